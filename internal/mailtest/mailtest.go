// Package mailtest runs mailpit, a real SMTP server with an HTTP API, for tests that
// follow an email from Cairn to its reader: invitations, verification and reset
// links, notices.
package mailtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/testbin"
)

// Server is one mailpit process.
type Server struct {
	tb       testing.TB
	bin      string
	dir      string
	smtpPort int
	httpPort int
	cmd      *exec.Cmd
}

// Start runs mailpit on free loopback ports until the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{
		tb:  tb,
		bin: testbin.Find(tb, "mailpit", "make mailpit, or go install github.com/axllent/mailpit@v1.33.1"),
		dir: tb.TempDir(),
	}
	s.smtpPort, s.httpPort = testbin.FreePort(tb), testbin.FreePort(tb)
	s.Resume()
	tb.Cleanup(s.Stop)
	return s
}

// SMTPURL is the SMTP_URL that sends to this server.
func (s *Server) SMTPURL() string {
	return fmt.Sprintf("smtp://127.0.0.1:%d?from=cairn@cairn.test", s.smtpPort)
}

// Stop kills mailpit, as an SMTP outage; Resume starts it again on the same ports,
// keeping what it had received.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Resume starts mailpit (again) and waits until both ports answer.
func (s *Server) Resume() {
	s.tb.Helper()
	s.cmd = exec.Command(s.bin,
		"--smtp", fmt.Sprintf("127.0.0.1:%d", s.smtpPort),
		"--listen", fmt.Sprintf("127.0.0.1:%d", s.httpPort),
		"--database", filepath.Join(s.dir, "mailpit.db"),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--disable-version-check")
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("mailtest: start mailpit: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.smtpPort), time.Second)
		if err == nil {
			c.Close()
			if resp, err := http.Get(s.api("/api/v1/messages")); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.tb.Fatalf("mailtest: mailpit did not start on ports %d/%d", s.smtpPort, s.httpPort)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) api(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.httpPort, path)
}

// Message is one received email.
type Message struct {
	ID      string
	From    string
	To      []string
	Subject string
	Text    string
}

type address struct {
	Address string `json:"Address"`
}

type summary struct {
	ID      string    `json:"ID"`
	From    address   `json:"From"`
	To      []address `json:"To"`
	Subject string    `json:"Subject"`
}

// Messages returns every email received so far, newest first, with their text.
func (s *Server) Messages() []Message {
	s.tb.Helper()
	var list struct {
		Messages []summary `json:"messages"`
	}
	s.get("/api/v1/messages?limit=500", &list)
	out := make([]Message, 0, len(list.Messages))
	for _, m := range list.Messages {
		var full struct {
			Text string `json:"Text"`
		}
		s.get("/api/v1/message/"+url.PathEscape(m.ID), &full)
		msg := Message{ID: m.ID, From: m.From.Address, Subject: m.Subject, Text: full.Text}
		for _, a := range m.To {
			msg.To = append(msg.To, a.Address)
		}
		out = append(out, msg)
	}
	return out
}

// To returns the emails received for address (case-insensitive), newest first.
func (s *Server) To(address string) []Message {
	s.tb.Helper()
	var out []Message
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, address) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// WaitFor waits up to timeout for an email to address whose subject contains
// subject, and returns the newest such one.
func (s *Server) WaitFor(address, subject string, timeout time.Duration) Message {
	s.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, m := range s.To(address) {
			if strings.Contains(m.Subject, subject) {
				return m
			}
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("mailtest: no email to %s with subject containing %q within %s; received: %v", address, subject, timeout, s.subjects())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) subjects() []string {
	var out []string
	for _, m := range s.Messages() {
		out = append(out, fmt.Sprintf("%v: %s", m.To, m.Subject))
	}
	return out
}

var linkRe = regexp.MustCompile(`https?://[^\s<>"]+`)

// Link returns the first URL in the email whose path starts with pathPrefix.
func (m Message) Link(tb testing.TB, pathPrefix string) string {
	tb.Helper()
	for _, l := range linkRe.FindAllString(m.Text, -1) {
		if u, err := url.Parse(l); err == nil && strings.HasPrefix(u.Path, pathPrefix) {
			return l
		}
	}
	tb.Fatalf("mailtest: no link to %s in the email %q:\n%s", pathPrefix, m.Subject, m.Text)
	return ""
}

func (s *Server) get(path string, into any) {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.api(path), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.tb.Fatalf("mailtest: GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.tb.Fatalf("mailtest: GET %s: status %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		s.tb.Fatalf("mailtest: GET %s: %v", path, err)
	}
}
