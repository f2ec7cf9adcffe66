package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

type deviceCodeJSON struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

type deviceTokenJSON struct {
	APIKey string `json:"api_key"`
	Key    struct {
		ID        string    `json:"id"`
		Name      string    `json:"name"`
		Scopes    []string  `json:"scopes"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"key"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Interval    int    `json:"interval"`
}

func startDevice(t *testing.T, inst *servertest.Instance, name string) deviceCodeJSON {
	t.Helper()
	var d deviceCodeJSON
	call(t, inst, "POST", "/v1/device/code", "", `{"client_name":"`+name+`"}`, 200, &d)
	return d
}

func poll(t *testing.T, inst *servertest.Instance, deviceCode string) (int, deviceTokenJSON) {
	t.Helper()
	resp := inst.Do(t, "POST", "/v1/device/token", "", `{"device_code":"`+deviceCode+`"}`)
	body := servertest.ReadBody(t, resp)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("token response Cache-Control %q, want no-store", cc)
	}
	var out deviceTokenJSON
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("poll: %d %s", resp.StatusCode, body)
	}
	return resp.StatusCode, out
}

// waitInterval lets the device's interval pass, as its clock would, by moving the
// last poll back in the database rather than sleeping.
func waitInterval(t *testing.T, inst *servertest.Instance, userCode string) {
	t.Helper()
	if _, err := inst.Server.Pool().Exec(context.Background(),
		`UPDATE device_authorizations SET last_polled_at = last_polled_at - interval '1 minute' WHERE last_polled_at IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
}

// decide approves or denies code at /activate as the signed-in browser b, picking
// workspaceID ("" leaves the page's choice).
func decide(t *testing.T, b *servertest.Browser, code, decision, workspaceID string) (int, string) {
	t.Helper()
	page := "/activate?code=" + url.QueryEscape(code)
	status, body := b.Get(page)
	if status != http.StatusOK {
		return status, body
	}
	if workspaceID == "" {
		m := regexp.MustCompile(`<option value="([^"]+)" selected`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("the activate page preselects no workspace:\n%s", body)
		}
		workspaceID = m[1]
	}
	resp, out := b.Submit(page, "/activate", url.Values{"user_code": {code}, "workspace_id": {workspaceID}, "decision": {decision}})
	return resp.StatusCode, out
}

// TestDeviceSignIn is the whole flow: the device asks for codes, polls while its
// person opens the link (logging in first), approves it in a workspace, and the
// next poll returns a key made for the device, once.
func TestDeviceSignIn(t *testing.T) {
	inst := servertest.Start(t, env(nil))
	acct := inst.NewAccount(t, plan.Pro)

	d := startDevice(t, inst, "Cairn for Chromium on Linux")
	if !regexp.MustCompile(`^[B-Z]{4}-[B-Z]{4}$`).MatchString(d.UserCode) || len(d.DeviceCode) < 40 ||
		d.ExpiresIn != 600 || d.Interval != 5 || d.VerificationURI != inst.URL+"/activate" ||
		d.VerificationURIComplete != inst.URL+"/activate?code="+d.UserCode {
		t.Fatalf("POST /v1/device/code = %+v", d)
	}
	var stored int
	if err := inst.Server.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM device_authorizations WHERE device_hash = sha256($1::bytea) OR user_hash = sha256($2::bytea)`,
		[]byte(d.DeviceCode), []byte(d.UserCode)).Scan(&stored); err != nil || stored != 1 {
		t.Fatalf("codes stored as their SHA-256: %d rows, %v", stored, err)
	}
	if status, tok := poll(t, inst, d.DeviceCode); status != 400 || tok.Error != "authorization_pending" {
		t.Fatalf("first poll: %d %+v", status, tok)
	}

	// The link sends a visitor to log in and back.
	b := inst.NewBrowser(t)
	resp, err := b.Client.Get(d.VerificationURIComplete)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
		t.Fatalf("the activate link for a visitor: %d to %q", resp.StatusCode, loc)
	}
	resp, _ = b.Post(loc, url.Values{"_csrf": {b.CSRF(loc)}, "email": {acct.Email}, "password": {servertest.Password}})
	if got := resp.Header.Get("Location"); got != "/activate?code="+d.UserCode {
		t.Fatalf("after log-in: to %q, want back to the activate page", got)
	}
	_, page := b.Get("/activate?code=" + url.QueryEscape(strings.ToLower(strings.ReplaceAll(d.UserCode, "-", " "))))
	if !strings.Contains(page, "Cairn for Chromium on Linux") || !strings.Contains(page, d.UserCode) || !strings.Contains(page, "127.0.0.1") {
		t.Fatalf("the activate page does not show the device (code typed in lower case with a space):\n%s", page)
	}

	status, body := decide(t, b, d.UserCode, "approve", acct.WorkspaceID.String())
	if status != 200 || !strings.Contains(body, "Approved") {
		t.Fatalf("approve: %d\n%s", status, body)
	}
	waitInterval(t, inst, d.UserCode)
	status, tok := poll(t, inst, d.DeviceCode)
	if status != 200 || !servertest.KeyRe.MatchString(tok.APIKey) || tok.Key.Name != "Cairn for Chromium on Linux" {
		t.Fatalf("poll after approval: %d %+v", status, tok)
	}
	if got := strings.Join(tok.Key.Scopes, " "); got != "documents:write search answer usage:read" {
		t.Fatalf("device key scopes %q", got)
	}
	if d := time.Until(tok.Key.ExpiresAt); d < 89*24*time.Hour || d > 90*24*time.Hour {
		t.Fatalf("device key expires in %v, want 90 days", d)
	}
	var m meBody
	call(t, inst, "GET", "/v1/me", tok.APIKey, "", 200, &m)
	if m.Workspace.ID != acct.WorkspaceID.String() || m.Key.ID != tok.Key.ID {
		t.Fatalf("the device key acts as %+v", m)
	}
	call(t, inst, "POST", "/v1/documents", tok.APIKey, `{"documents":[{"id":"from-device","text":"Saved by the extension."}]}`, 200, nil)
	if resp := inst.Do(t, "GET", "/v1/documents", tok.APIKey, ""); resp.StatusCode != 403 {
		t.Fatalf("a device key listing documents: %d, want 403 (no documents:read)", resp.StatusCode)
	}

	t.Run("Reused", func(t *testing.T) {
		waitInterval(t, inst, d.UserCode)
		if status, tok := poll(t, inst, d.DeviceCode); status != 400 || tok.Error != "invalid_grant" || tok.APIKey != "" {
			t.Fatalf("second exchange of the same device code: %d %+v", status, tok)
		}
		status, body := decide(t, b, d.UserCode, "approve", acct.WorkspaceID.String())
		if status != 409 || !strings.Contains(body, "already been used") {
			t.Fatalf("approving a used code again: %d\n%s", status, body)
		}
	})
	t.Run("EveryStepAudited", func(t *testing.T) {
		rows, err := inst.Server.Pool().Query(context.Background(),
			`SELECT action, actor_kind FROM audit_log WHERE action LIKE 'device.%' OR (action = 'api_key.created' AND detail ? 'device_authorization') ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var a, k string
			if err := rows.Scan(&a, &k); err != nil {
				t.Fatal(err)
			}
			got = append(got, a+"/"+k)
		}
		want := "device.code_issued/device device.approved/user api_key.created/device device.key_issued/device"
		if strings.Join(got, " ") != want {
			t.Fatalf("audit: %v\nwant %s", got, want)
		}
	})
}

// TestDeviceRefusals: each way a device sign-in can fail is refused as RFC 8628
// says, and none of them yields a key.
func TestDeviceRefusals(t *testing.T) {
	inst := servertest.Start(t, env(nil))
	acct := inst.NewAccount(t, plan.Pro)
	other := inst.NewAccount(t, plan.Pro)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)

	t.Run("TooFast", func(t *testing.T) {
		d := startDevice(t, inst, "fast")
		if status, tok := poll(t, inst, d.DeviceCode); tok.Error != "authorization_pending" {
			t.Fatalf("first poll: %d %+v", status, tok)
		}
		status, tok := poll(t, inst, d.DeviceCode)
		if status != 400 || tok.Error != "slow_down" || tok.Interval != 10 {
			t.Fatalf("second poll at once: %d %+v; want slow_down with the interval raised to 10", status, tok)
		}
		// The raised interval holds: 6 seconds later is still too fast.
		if _, err := inst.Server.Pool().Exec(context.Background(), `UPDATE device_authorizations SET last_polled_at = now() - interval '6 seconds' WHERE client_name = 'fast'`); err != nil {
			t.Fatal(err)
		}
		if _, tok := poll(t, inst, d.DeviceCode); tok.Error != "slow_down" {
			t.Fatalf("6 s after a slow_down: %+v", tok)
		}
	})
	t.Run("Denied", func(t *testing.T) {
		d := startDevice(t, inst, "denied")
		status, body := decide(t, b, d.UserCode, "deny", "")
		if status != 200 || !strings.Contains(body, "Denied") {
			t.Fatalf("deny: %d\n%s", status, body)
		}
		if _, tok := poll(t, inst, d.DeviceCode); tok.Error != "access_denied" {
			t.Fatalf("poll after denial: %+v", tok)
		}
		// Denial is final: the code cannot be approved afterwards.
		status, _ = decide(t, b, d.UserCode, "approve", acct.WorkspaceID.String())
		waitInterval(t, inst, d.UserCode)
		if _, tok := poll(t, inst, d.DeviceCode); status == 200 || tok.Error != "access_denied" {
			t.Fatalf("approve after deny: page %d, poll %+v", status, tok)
		}
	})
	t.Run("Expired", func(t *testing.T) {
		d := startDevice(t, inst, "late")
		if _, err := inst.Server.Pool().Exec(context.Background(),
			`UPDATE device_authorizations SET created_at = created_at - interval '11 minutes', expires_at = expires_at - interval '11 minutes' WHERE client_name = 'late'`); err != nil {
			t.Fatal(err)
		}
		if status, body := decide(t, b, d.UserCode, "approve", acct.WorkspaceID.String()); status != 404 || !strings.Contains(body, "expired") {
			t.Fatalf("approving an expired code: %d\n%s", status, body)
		}
		if status, tok := poll(t, inst, d.DeviceCode); status != 400 || tok.Error != "expired_token" {
			t.Fatalf("poll after expiry: %d %+v", status, tok)
		}
	})
	t.Run("WrongWorkspace", func(t *testing.T) {
		d := startDevice(t, inst, "elsewhere")
		status, body := decide(t, b, d.UserCode, "approve", other.WorkspaceID.String())
		if status != 404 || !strings.Contains(body, "not a member of that workspace") {
			t.Fatalf("approving into someone else's workspace: %d\n%s", status, body)
		}
		if _, tok := poll(t, inst, d.DeviceCode); tok.Error != "authorization_pending" {
			t.Fatalf("after a refused approval the device still waits: %+v", tok)
		}
		var n int
		if err := inst.Server.Pool().QueryRow(context.Background(), `SELECT count(*) FROM api_keys WHERE workspace_id = $1`, other.WorkspaceID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("the other workspace has %d keys, want its own 1", n)
		}
		// A viewer of a workspace cannot put a key in it either.
		if _, err := inst.Server.Pool().Exec(context.Background(),
			`INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, 'viewer')`, other.WorkspaceID, acct.UserID); err != nil {
			t.Fatal(err)
		}
		status, body = decide(t, b, d.UserCode, "approve", other.WorkspaceID.String())
		if status != 403 || !strings.Contains(body, "needs the member role") {
			t.Fatalf("approving as a viewer: %d\n%s", status, body)
		}
	})
	t.Run("UnknownCodes", func(t *testing.T) {
		if status, tok := poll(t, inst, "not-a-device-code"); status != 400 || tok.Error != "invalid_grant" {
			t.Fatalf("unknown device code: %d %+v", status, tok)
		}
		if status, body := b.Get("/activate?code=BCDF-GHJK"); status != 404 || !strings.Contains(body, "No sign-in is waiting for that code") {
			t.Fatalf("unknown user code: %d\n%s", status, body)
		}
		if status, body := b.Get("/activate?code=hello"); status != 400 || !strings.Contains(body, "codes are 8 letters") {
			t.Fatalf("malformed user code: %d\n%s", status, body)
		}
	})
	t.Run("MalformedRequests", func(t *testing.T) {
		for _, tc := range []struct{ path, body, field string }{
			{"/v1/device/token", `{}`, "device_code"},
			{"/v1/device/token", `{"device_code":5}`, "device_code"},
			{"/v1/device/token", `{"device_code":"x","grant_type":"password"}`, "grant_type"},
			{"/v1/device/code", `{"client_name":"` + strings.Repeat("n", 101) + `"}`, "client_name"},
			{"/v1/device/code", `{"scope":"all"}`, "scope"},
		} {
			resp := inst.Do(t, "POST", tc.path, "", tc.body)
			var e apiError
			_ = json.Unmarshal([]byte(servertest.ReadBody(t, resp)), &e)
			if resp.StatusCode != 400 || e.Error.Code != "invalid_request" || !strings.HasPrefix(e.Error.Message, tc.field) {
				t.Fatalf("POST %s %s: %d %+v, want invalid_request naming %s", tc.path, tc.body, resp.StatusCode, e, tc.field)
			}
		}
	})
	t.Run("TooManyCodes", func(t *testing.T) {
		guesser := inst.NewBrowser(t)
		guesser.LogIn(other.Email, servertest.Password)
		status := 0
		for range 31 {
			status, _ = guesser.Get("/activate?code=BCDF-GHJK")
		}
		if status != http.StatusTooManyRequests {
			t.Fatalf("the 31st code tried in a row: %d, want 429", status)
		}
	})
	t.Run("NoKeyWasMade", func(t *testing.T) {
		var n int
		if err := inst.Server.Pool().QueryRow(context.Background(), `SELECT count(*) FROM api_keys WHERE kind = 'device'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d device keys after refusals only", n)
		}
	})
}

// TestDeviceApprovalAtTheKeyLimit: a workspace at its plan's key limit cannot
// approve a device; the page says so and the device keeps waiting.
func TestDeviceApprovalAtTheKeyLimit(t *testing.T) {
	inst := servertest.Start(t, env(nil))
	acct := inst.NewAccount(t, plan.Free) // one key of two
	inst.NewKey(t, acct, servertestSpec("second"))
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)
	d := startDevice(t, inst, "third")
	status, body := decide(t, b, d.UserCode, "approve", acct.WorkspaceID.String())
	if status != 403 || !strings.Contains(body, "The Free plan allows 2 active API keys") {
		t.Fatalf("approve at the limit: %d\n%s", status, body)
	}
	if _, tok := poll(t, inst, d.DeviceCode); tok.Error != "authorization_pending" {
		t.Fatalf("the device after a refused approval: %+v", tok)
	}
}

func servertestSpec(name string) apikey.Spec { return apikey.Spec{Name: name} }
