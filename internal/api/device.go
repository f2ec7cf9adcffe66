package api

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/device"
)

// deviceCodeResponse is RFC 8628 §3.2's device authorization response.
type deviceCodeResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// deviceTokenResponse carries the device's key, shown this once.
type deviceTokenResponse struct {
	APIKey string        `json:"api_key"`
	Key    deviceKeyJSON `json:"key"`
}

type deviceKeyJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	ExpiresAt time.Time `json:"expires_at"`
}

// deviceTokenError is RFC 6749 §5.2's error response, which RFC 8628 §3.5 extends.
type deviceTokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Interval    int    `json:"interval,omitempty"`
}

// deviceCode starts a device sign-in. It needs no key, so each call is charged to
// the caller's daily per-address budget.
func (a *API) deviceCode(c echo.Context) error {
	if err := a.chargeIP(c); err != nil {
		return err
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	name, err := parseDeviceCode(body)
	if err != nil {
		return err
	}
	r := c.Request()
	auth, err := a.Devices.Start(r.Context(), name, apikey.Client{IP: c.RealIP(), UserAgent: r.UserAgent()})
	if err != nil {
		return err
	}
	verify := a.BaseURL + "/activate"
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, deviceCodeResponse{
		DeviceCode: auth.DeviceCode, UserCode: auth.UserCode,
		VerificationURI: verify, VerificationURIComplete: verify + "?code=" + url.QueryEscape(auth.UserCode),
		ExpiresIn: int(auth.ExpiresIn.Seconds()), Interval: auth.Interval,
	})
}

// deviceToken is the device's poll: its key once approved, else RFC 8628's error.
// Polls at the agreed interval cost nothing; a poll too fast or with an unknown
// code is charged to the address's daily budget, like any call without a key.
func (a *API) deviceToken(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	code, err := parseDeviceToken(body)
	if err != nil {
		return err
	}
	r := c.Request()
	c.Response().Header().Set("Cache-Control", "no-store")
	issued, err := a.Devices.Poll(r.Context(), code, apikey.Client{IP: c.RealIP(), UserAgent: r.UserAgent()})
	var ge *device.GrantError
	if errors.As(err, &ge) {
		if ge.Code == device.InvalidGrant || ge.Code == device.SlowDown {
			if err := a.chargeIP(c); err != nil {
				return err
			}
		}
		return c.JSON(http.StatusBadRequest, deviceTokenError{Error: ge.Code, Description: ge.Description, Interval: ge.Interval})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deviceTokenResponse{
		APIKey: issued.Secret,
		Key: deviceKeyJSON{
			ID: issued.ID.String(), Name: issued.Name, Scopes: issued.Scopes.Names(), ExpiresAt: issued.ExpiresAt.UTC(),
		},
	})
}

// parseDeviceCode reads POST /v1/device/code's body: {"client_name"?}.
func parseDeviceCode(body []byte) (string, error) {
	o, err := parseObject(body, "")
	if err != nil {
		return "", err
	}
	name, _, err := o.str("client_name", false)
	if err != nil {
		return "", err
	}
	return name, o.unknown()
}

// parseDeviceToken reads POST /v1/device/token's body: {"device_code"}, with the
// grant_type RFC 8628 clients send (which, when sent, must be the device grant's).
func parseDeviceToken(body []byte) (string, error) {
	o, err := parseObject(body, "")
	if err != nil {
		return "", err
	}
	gt, has, err := o.str("grant_type", false)
	if err != nil {
		return "", err
	}
	if has && gt != deviceGrantType {
		return "", apperr.Field("grant_type", "must be %q", deviceGrantType)
	}
	code, _, err := o.str("device_code", true)
	if err != nil {
		return "", err
	}
	return code, o.unknown()
}

const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"
