package mail

import (
	"bufio"
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
)

// smtpServer is the receiving end of one SMTP conversation, speaking just enough
// of RFC 5321 (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT) to accept a message.
type smtpServer struct {
	addr string
	mu   sync.Mutex
	auth string // the decoded AUTH PLAIN response
	from string
	to   []string
	data string
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &smtpServer{addr: ln.Addr().String()}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
		say := func(line string) { w.WriteString(line + "\r\n"); w.Flush() }
		say("220 localhost ESMTP test")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			verb, arg, _ := strings.Cut(line, " ")
			s.mu.Lock()
			switch strings.ToUpper(verb) {
			case "EHLO", "HELO":
				say("250-localhost")
				say("250 AUTH PLAIN")
			case "AUTH":
				b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(arg, "PLAIN "))
				s.auth = string(b)
				say("235 2.7.0 Authentication successful")
			case "MAIL":
				s.from = arg
				say("250 OK")
			case "RCPT":
				s.to = append(s.to, arg)
				say("250 OK")
			case "DATA":
				say("354 Go ahead")
				var b strings.Builder
				for {
					l, err := r.ReadString('\n')
					if err != nil || l == ".\r\n" {
						break
					}
					b.WriteString(l)
				}
				s.data = b.String()
				say("250 OK queued")
			case "QUIT":
				say("221 Bye")
				s.mu.Unlock()
				return
			default:
				say("502 not implemented")
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func TestSMTPMailerDelivers(t *testing.T) {
	srv := startSMTP(t)
	m, err := New("smtp://cairn:s3cret@"+srv.addr+"?from=quota@cairn.example", "https://cairn.example", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	msg := Message{To: []string{"ada@example.com", "bob@example.com"}, Subject: "Quota at 80 % — Ümlaut", Text: "Line one\n.starts with a dot\nlast"}
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.auth != "\x00cairn\x00s3cret" {
		t.Errorf("AUTH PLAIN = %q", srv.auth)
	}
	if srv.from != "FROM:<quota@cairn.example>" || strings.Join(srv.to, ",") != "TO:<ada@example.com>,TO:<bob@example.com>" {
		t.Errorf("envelope from %q to %q", srv.from, srv.to)
	}
	for _, want := range []string{
		"From: quota@cairn.example\r\n", "To: ada@example.com, bob@example.com\r\n",
		"Subject: =?utf-8?q?", "Content-Type: text/plain; charset=utf-8\r\n",
		"\r\nLine one\r\n..starts with a dot\r\nlast\r\n", // dot-stuffed on the wire
	} {
		if !strings.Contains(srv.data, want) {
			t.Errorf("message lacks %q:\n%s", want, srv.data)
		}
	}
}

func TestNew(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("LoggedWithoutSMTPURL", func(t *testing.T) {
		m, err := New("", "https://cairn.example:8443", log)
		if lm, ok := m.(*LogMailer); err != nil || !ok || lm.From != "no-reply@cairn.example" {
			t.Fatalf("New(\"\") = %#v, %v", m, err)
		}
	})
	t.Run("LoggedLinksOnlyOnLoopback", func(t *testing.T) {
		token := "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4"
		const workspace = "83f4aa94-a241-4ba7-a75d-27dd1f2f6862"
		msg := Message{To: []string{"a@example.com"}, Subject: "Reset", Text: "Open https://x/password/reset/" + token + " within an hour (workspace " + workspace + ")."}
		for base, shown := range map[string]bool{
			"http://localhost:8080": true, "http://127.0.0.1:8080": true, "http://[::1]:8080": true, "http://app.localhost": true,
			"https://cairn.example": false, "http://10.0.0.5:8080": false, "": false,
		} {
			var buf strings.Builder
			m, err := New("", base, slog.New(slog.NewTextHandler(&buf, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Send(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(buf.String(), token); got != shown {
				t.Errorf("BASE_URL %q: token in the log = %v, want %v:\n%s", base, got, shown, buf.String())
			}
			if !strings.Contains(buf.String(), "within an hour") || !strings.Contains(buf.String(), workspace) {
				t.Errorf("BASE_URL %q: the rest of the message is missing:\n%s", base, buf.String())
			}
		}
	})
	t.Run("DefaultPorts", func(t *testing.T) {
		for url, port := range map[string]string{"smtp://mail.example": "587", "smtps://mail.example": "465", "smtp://mail.example:2525": "2525"} {
			m, err := New(url, "http://localhost:8080", log)
			if s, ok := m.(*SMTPMailer); err != nil || !ok || s.Port != port || s.ImplicitTLS != strings.HasPrefix(url, "smtps") {
				t.Errorf("New(%q) = %#v, %v; want port %s", url, m, err, port)
			}
		}
	})
	t.Run("BadURLsNameNoSecret", func(t *testing.T) {
		for _, url := range []string{"http://user:hunter2@mail.example", "smtp://user:hunter2@mail.example?from=not-an-address"} {
			_, err := New(url, "http://localhost", log)
			if err == nil || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("New(%q) = %v; want an error without the password", url, err)
			}
		}
	})
}
