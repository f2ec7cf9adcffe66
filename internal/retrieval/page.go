package retrieval

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"

	readability "codeberg.org/readeck/go-readability/v2"
	readertext "codeberg.org/readeck/go-readability/v2/render"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/internal/apperr"
)

// maxPageElements bounds the elements readability scores in one page, so that a
// pathological page costs bounded time; real articles have a few thousand.
const maxPageElements = 200_000

// MaxTextBytes is the most text one document may hold (1 MiB), whether sent as
// text or read from a page.
const MaxTextBytes = 1 << 20

// Page is the readable part of a saved web page.
type Page struct {
	Title string
	Text  string
}

// errUnreadable reasons are shown to the client as a document's failure reason.
var (
	errNoReadableText = errors.New("no readable text was found in the page's html")
	errPageTooLarge   = errors.New("the page's readable text is over 1 MiB")
	errPageTooComplex = errors.New("the page has too many elements to read")
)

// ExtractPage returns the readable text and title of a page's HTML, as Firefox's
// reader view would show it: navigation, ads and scripts dropped, paragraphs kept
// as paragraphs. pageURL resolves the page's relative links. The error, when
// there is one, is a reason fit to show the client.
func ExtractPage(rawHTML, pageURL string) (Page, error) {
	u, err := url.Parse(pageURL)
	if err != nil {
		u = nil
	}
	p := readability.NewParser()
	p.MaxElemsToParse = maxPageElements
	art, err := p.Parse(strings.NewReader(rawHTML), u)
	if err != nil {
		if strings.Contains(err.Error(), "too many elements") {
			return Page{}, errPageTooComplex
		}
		return Page{}, errNoReadableText
	}
	if art.Node == nil {
		return Page{}, errNoReadableText
	}
	text := tidyText(readertext.InnerText(art.Node))
	switch {
	case strings.TrimSpace(text) == "":
		return Page{}, errNoReadableText
	case len(text) > MaxTextBytes:
		return Page{}, errPageTooLarge
	}
	return Page{Title: strings.Join(strings.Fields(art.Title()), " "), Text: text}, nil
}

// tidyText trims each line and keeps at most one blank line between paragraphs,
// the shape the chunker splits on; control characters other than line breaks go.
func tidyText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	var b strings.Builder
	blank := 0
	for _, line := range strings.Split(s, "\n") {
		line = strings.Join(strings.Fields(line), " ")
		if line == "" {
			blank++
			continue
		}
		if b.Len() > 0 {
			if blank > 0 {
				b.WriteString("\n\n")
			} else {
				b.WriteString("\n")
			}
		}
		blank = 0
		b.WriteString(line)
	}
	return b.String()
}

// trackingParams are query parameters that name a campaign, not a page.
var trackingParams = map[string]bool{"fbclid": true, "gclid": true, "dclid": true, "msclkid": true, "mc_cid": true, "mc_eid": true, "igshid": true, "_ga": true}

// CanonicalURL returns the URL that names a page whatever link led to it: the
// page's own <link rel="canonical"> when it points to the same host (another
// host's claim is ignored, so no page can take another's place), else pageURL;
// then normalised: lower-case scheme and host, no default port, no fragment, no
// tracking parameters (utm_*, fbclid, …), the rest of the query sorted.
func CanonicalURL(pageURL, rawHTML string) string {
	u, err := url.Parse(strings.TrimSpace(pageURL))
	if err != nil || u.Host == "" {
		return strings.TrimSpace(pageURL)
	}
	if href := canonicalLink(rawHTML); href != "" {
		if c, err := u.Parse(href); err == nil && strings.EqualFold(c.Hostname(), u.Hostname()) && (c.Scheme == "http" || c.Scheme == "https") {
			u = c
		}
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if (u.Scheme == "http" && u.Port() == "80") || (u.Scheme == "https" && u.Port() == "443") {
		u.Host = u.Hostname()
	}
	u.Fragment, u.RawFragment = "", ""
	u.User = nil
	if u.Path == "" {
		u.Path = "/"
	}
	q := u.Query()
	for k := range q {
		if trackingParams[strings.ToLower(k)] || strings.HasPrefix(strings.ToLower(k), "utm_") {
			delete(q, k)
		}
	}
	for _, vs := range q {
		sort.Strings(vs)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// canonicalLink finds <link rel="canonical" href> in the page's head, reading no
// further than the start of its body.
func canonicalLink(rawHTML string) string {
	if rawHTML == "" {
		return ""
	}
	z := html.NewTokenizer(strings.NewReader(rawHTML))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch atom.Lookup(name) {
			case atom.Body:
				return ""
			case atom.Link:
				var rel, href string
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					switch string(bytes.ToLower(k)) {
					case "rel":
						rel = strings.ToLower(string(v))
					case "href":
						href = strings.TrimSpace(string(v))
					}
				}
				for _, r := range strings.Fields(rel) {
					if r == "canonical" && href != "" {
						return href
					}
				}
			}
		}
	}
}

// StableID is the id of a document saved without one: derived from its canonical
// URL, so saving the same page again replaces it.
func StableID(canonicalURL string) string {
	h := sha256.Sum256([]byte(canonicalURL))
	return "url_" + hex.EncodeToString(h[:16])
}

// contentHashVersion changes when what the hash covers changes, so that every
// document is embedded again on its next save.
const contentHashVersion = "cairn-content-v1"

// contentHash is the SHA-256 of everything a document's chunks and vectors derive
// from: its text, title, url and metadata, the embedding model and the chunker.
func contentHash(model string, c Chunker, d DocumentInput, metadataJSON []byte) []byte {
	h := sha256.New()
	chunker := strconv.Itoa(c.Size) + "/" + strconv.Itoa(c.Overlap)
	for _, part := range []string{contentHashVersion, model, chunker, d.Title, d.URL, string(metadataJSON), d.Text} {
		// Length-prefixed, so no two different documents hash the same parts.
		var n [8]byte
		l := len(part)
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(part))
	}
	return h.Sum(nil)
}

// maxTitleRunes is the longest title kept from a page (the API's limit on titles,
// with the ellipsis that marks a cut).
const maxTitleRunes = 1000

// assignIDs gives each document without an id one: StableID of its canonical URL,
// or a random one when it has no URL. Two documents of one batch with the same id
// (a page sent twice) are refused, naming both.
func assignIDs(docs []DocumentInput) ([]DocumentInput, error) {
	out := make([]DocumentInput, len(docs))
	seen := make(map[string]int, len(docs))
	for i, d := range docs {
		field := fmt.Sprintf("documents[%d].id", i)
		if d.ID == "" {
			field = fmt.Sprintf("documents[%d].url", i)
			if strings.TrimSpace(d.URL) != "" {
				d.ID = StableID(CanonicalURL(d.URL, d.HTML))
			} else {
				d.ID = "doc_" + strings.ReplaceAll(uuid.NewString(), "-", "")
			}
		}
		if j, dup := seen[d.ID]; dup {
			return nil, apperr.Field(field, "is the same document as documents[%d] (id %q); send each once", j, d.ID)
		}
		seen[d.ID] = i
		out[i] = d
	}
	return out, nil
}
