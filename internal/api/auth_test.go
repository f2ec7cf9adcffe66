package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

type apiError struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

type meBody struct {
	Workspace struct{ ID, Name, Plan string }
	Key       struct{ ID, Name, Prefix string }
}

// get sends GET path with the given headers and returns status, headers and body.
func get(t *testing.T, inst *servertest.Instance, path string, headers map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, inst.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, servertest.ReadBody(t, resp)
}

func me(t *testing.T, inst *servertest.Instance, key string) (int, meBody) {
	t.Helper()
	status, _, body := get(t, inst, "/v1/me", map[string]string{"Authorization": "Bearer " + key})
	var m meBody
	if status == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("GET /v1/me: %v: %s", err, body)
		}
	}
	return status, m
}

func TestAuthentication(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Free)
	key := acct.Key
	revoked := inst.NewAccount(t, plan.Free)
	revokeViaDashboard(t, inst, revoked)

	badChecksum := key[:len(key)-1] + "A"
	if key[len(key)-1] == 'A' {
		badChecksum = key[:len(key)-1] + "B"
	}
	const malformed = "The API key is malformed"
	const unknown = "The API key is unknown or has been revoked."
	const missing = "Missing API key"
	const badScheme = `The Authorization header must be "Bearer <key>".`

	for _, tc := range []struct {
		name    string
		headers map[string]string
		status  int
		message string // prefix of error.message; "" for success
	}{
		{"Bearer", map[string]string{"Authorization": "Bearer " + key}, 200, ""},
		{"BearerLowercase", map[string]string{"Authorization": "bearer " + key}, 200, ""},
		{"BearerUppercase", map[string]string{"Authorization": "BEARER " + key}, 200, ""},
		{"XAPIKey", map[string]string{"X-API-Key": key}, 200, ""},
		{"XAPIKeySurroundingSpaces", map[string]string{"X-API-Key": "  " + key + "  "}, 200, ""},
		{"BearerTrailingSpaces", map[string]string{"Authorization": "Bearer " + key + "   "}, 200, ""},
		{"BearerExtraSpaces", map[string]string{"Authorization": "Bearer   " + key}, 200, ""},
		{"AuthorizationWinsOverXAPIKey", map[string]string{"Authorization": "Bearer " + key, "X-API-Key": "junk"}, 200, ""},
		{"NoKey", nil, 401, missing},
		{"EmptyAuthorization", map[string]string{"Authorization": ""}, 401, missing},
		{"EmptyXAPIKey", map[string]string{"X-API-Key": "   "}, 401, missing},
		{"BearerWithoutKey", map[string]string{"Authorization": "Bearer"}, 401, badScheme},
		{"BearerBlankKey", map[string]string{"Authorization": "Bearer    "}, 401, badScheme},
		{"Basic", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, 401, badScheme},
		{"BasicForAProxyWithXAPIKey", map[string]string{"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": key}, 200, ""},
		{"BearerBlankWithXAPIKey", map[string]string{"Authorization": "Bearer ", "X-API-Key": key}, 401, badScheme},
		{"KeyWithoutScheme", map[string]string{"Authorization": key}, 401, badScheme},
		{"Token", map[string]string{"Authorization": "Token " + key}, 401, badScheme},
		{"TwoKeys", map[string]string{"Authorization": "Bearer " + key + " " + key}, 401, malformed},
		{"WrongChecksum", map[string]string{"Authorization": "Bearer " + badChecksum}, 401, malformed},
		{"TooShort", map[string]string{"Authorization": "Bearer " + key[:30]}, 401, malformed},
		{"TooLong", map[string]string{"Authorization": "Bearer " + key + strings.Repeat("a", 5000)}, 401, malformed},
		{"TestPrefix", map[string]string{"Authorization": "Bearer ck_test_" + key[8:]}, 401, malformed},
		{"UnknownKey", map[string]string{"Authorization": "Bearer " + apikey.Generate()}, 401, unknown},
		{"RevokedKey", map[string]string{"Authorization": "Bearer " + revoked.Key}, 401, unknown},
		{"RevokedKeyViaXAPIKey", map[string]string{"X-API-Key": revoked.Key}, 401, unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := get(t, inst, "/v1/me", tc.headers)
			if status >= 500 {
				t.Fatalf("%d (a 5xx): %s", status, body)
			}
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if got := h.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
				t.Fatalf("Content-Type %q, want JSON", got)
			}
			if tc.status == 200 {
				var m meBody
				if err := json.Unmarshal([]byte(body), &m); err != nil || m.Workspace.ID != acct.WorkspaceID.String() {
					t.Fatalf("body %s, want workspace %s", body, acct.WorkspaceID)
				}
				return
			}
			var e apiError
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("error body is not the documented JSON: %v: %s", err, body)
			}
			if e.Error.Code != "unauthorized" || !strings.HasPrefix(e.Error.Message, tc.message) {
				t.Fatalf("error = %+v, want unauthorized %q", e.Error, tc.message)
			}
			if e.Error.RequestID == "" || e.Error.RequestID != h.Get("X-Request-ID") {
				t.Fatalf("request_id %q does not match X-Request-ID %q", e.Error.RequestID, h.Get("X-Request-ID"))
			}
			if strings.Contains(body, key) || (tc.name == "RevokedKey" && strings.Contains(body, revoked.Key)) {
				t.Fatalf("the error echoes the key")
			}
		})
	}
}

// revokeViaDashboard logs in as the account's owner and revokes its key through
// the dashboard form, as a person would.
func revokeViaDashboard(t *testing.T, inst *servertest.Instance, acct servertest.Account) {
	t.Helper()
	_, m := me(t, inst, acct.Key)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)
	resp, body := b.Submit("/dashboard/keys", "/dashboard/keys/"+m.Key.ID+"/revoke", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
}

// TestRevocationReachesOtherReplica runs two replicas on one database; a key
// revoked through the first must be refused by the second within 2 seconds
// (the contract in shared/API.md), even though the second has it cached.
func TestRevocationReachesOtherReplica(t *testing.T) {
	first := servertest.Start(t, nil)
	second := servertest.StartOn(t, first.DatabaseURL, nil)
	acct := first.NewAccount(t, plan.Free)
	for _, inst := range []*servertest.Instance{first, second} {
		if status, _ := me(t, inst, acct.Key); status != 200 {
			t.Fatalf("before revoking: %d on %s", status, inst.URL)
		}
	}
	revokeViaDashboard(t, first, acct)
	if status, _ := me(t, first, acct.Key); status != 401 {
		t.Fatalf("the revoking replica still accepts the key: %d", status)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		status, _ := me(t, second, acct.Key)
		if status == 401 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other replica still answers %d 2s after the revocation", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestARefusalDoesNotWaitForTheBody: a keyless request that declares a body and
// never sends it is answered 401 at once, not when the server gives up reading.
func TestARefusalDoesNotWaitForTheBody(t *testing.T) {
	inst := servertest.Start(t, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(inst.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/search HTTP/1.1\r\nHost: cairn\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within 3 s while the body is withheld: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
}
