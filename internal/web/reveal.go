package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/views"
)

// A key just created or rolled is shown once, on the page the POST redirects to
// (so reloading that page never makes a second key). Its secret must not be
// stored in plain text on the way, and sessions live in PostgreSQL: the session
// keeps the secret sealed with AES-256-GCM, and the one-use key that opens it goes
// to the browser alone, in a cookie that lives a few minutes, is sent only to the
// keys page and is dropped when read. Neither half shows the secret without the other.
const (
	sessReveal    = "reveal"
	revealCookie  = "cairn_reveal"
	revealPath    = "/dashboard/keys"
	revealSeconds = 300
)

// stashNewKey keeps k for the next load of the keys page in this session.
func (h *Handler) stashNewKey(c echo.Context, k *views.NewKey) error {
	plain, err := json.Marshal(k)
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	gcm, err := revealCipher(key)
	if err != nil {
		return err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	h.Sessions.Put(c.Request().Context(), sessReveal, base64.RawStdEncoding.EncodeToString(gcm.Seal(nonce, nonce, plain, nil)))
	c.SetCookie(h.revealCookieWith(base64.RawURLEncoding.EncodeToString(key), revealSeconds))
	return nil
}

// takeNewKey returns the key stashed for this page load, if any, and forgets it:
// a second load of the page shows nothing.
func (h *Handler) takeNewKey(c echo.Context) *views.NewKey {
	sealed := h.Sessions.PopString(c.Request().Context(), sessReveal)
	ck, err := c.Cookie(revealCookie)
	if err != nil {
		return nil
	}
	c.SetCookie(h.revealCookieWith("", -1))
	if sealed == "" {
		return nil
	}
	key, err1 := base64.RawURLEncoding.DecodeString(ck.Value)
	box, err2 := base64.RawStdEncoding.DecodeString(sealed)
	if err1 != nil || err2 != nil || len(key) != 32 {
		return nil
	}
	gcm, err := revealCipher(key)
	if err != nil || len(box) < gcm.NonceSize() {
		return nil
	}
	plain, err := gcm.Open(nil, box[:gcm.NonceSize()], box[gcm.NonceSize():], nil)
	if err != nil {
		return nil
	}
	var k views.NewKey
	if json.Unmarshal(plain, &k) != nil || k.Secret == "" {
		return nil
	}
	return &k
}

func revealCipher(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// revealCookieWith is the reveal cookie with a value and a lifetime (negative:
// delete it).
func (h *Handler) revealCookieWith(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: revealCookie, Value: value, Path: revealPath, MaxAge: maxAge,
		HttpOnly: true, Secure: h.Config.SecureCookies(), SameSite: http.SameSiteStrictMode,
	}
}
