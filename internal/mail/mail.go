// Package mail sends Cairn's emails: through SMTP when SMTP_URL is set, into the
// log otherwise, so a deployment without mail still shows what would have gone out.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Message is one plain-text email.
type Message struct {
	To      []string
	Subject string
	Text    string
}

// Mailer sends email. Implementations must be safe for concurrent use.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// New returns the Mailer for smtpURL: SMTP when it is set, the log otherwise. The
// sender is the URL's "from" query parameter, or no-reply at baseURL's host.
func New(smtpURL, baseURL string, log *slog.Logger) (Mailer, error) {
	from := "no-reply@localhost"
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
		from = "no-reply@" + u.Hostname()
	}
	if smtpURL == "" {
		return &LogMailer{Log: log, From: from, ShowLinks: loopback(baseURL)}, nil
	}
	u, err := url.Parse(smtpURL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New("mail: SMTP_URL: want smtp://user:pass@host:port or smtps://…")
	}
	if f := u.Query().Get("from"); f != "" {
		from = f
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("mail: SMTP_URL: from=%q is not an email address", from)
	}
	s := &SMTPMailer{Host: u.Hostname(), Port: u.Port(), ImplicitTLS: u.Scheme == "smtps", From: from}
	if s.Port == "" {
		s.Port = map[bool]string{true: "465", false: "587"}[s.ImplicitTLS]
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	return s, nil
}

// LogMailer writes each message to the log instead of sending it.
type LogMailer struct {
	Log  *slog.Logger
	From string
	// ShowLinks keeps one-time tokens (verification, reset, invitation links) in the
	// logged text. New sets it only when BASE_URL is a loopback address: on a
	// developer's machine the log is the only way to follow the link, while a
	// deployment's logs are read by more people than the mail's recipient.
	ShowLinks bool
}

// tokenLike matches what internal/onetime mints (43 URL-safe characters), and any
// longer opaque URL-safe value a message might carry; not a UUID (36 characters),
// which names a workspace or key and is no secret.
var tokenLike = regexp.MustCompile(`[A-Za-z0-9_-]{40,}`)

// Send logs m, with its one-time tokens withheld unless ShowLinks is set.
func (l *LogMailer) Send(ctx context.Context, m Message) error {
	text := m.Text
	if !l.ShowLinks {
		text = tokenLike.ReplaceAllLiteralString(text, "[token withheld: set SMTP_URL to send this email]")
	}
	l.Log.InfoContext(ctx, "email (SMTP_URL unset, not sent)", "from", l.From, "to", strings.Join(m.To, ", "), "subject", m.Subject, "text", text)
	return nil
}

// loopback reports whether baseURL names this machine (localhost or a loopback IP).
func loopback(baseURL string) bool {
	u, err := url.Parse(baseURL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// SMTPMailer sends through an SMTP server, upgrading to TLS with STARTTLS when the
// server offers it (net/smtp refuses to send a password over plain text to anyone
// but localhost).
type SMTPMailer struct {
	Host, Port         string
	Username, Password string
	ImplicitTLS        bool
	From               string
}

// Send delivers m, giving up after 30 seconds.
func (s *SMTPMailer) Send(ctx context.Context, m Message) error {
	if len(m.To) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addr := net.JoinHostPort(s.Host, s.Port)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("mail: dial %s: %w", addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if s.ImplicitTLS {
		conn = tls.Client(conn, &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12})
	}
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail: %s: %w", addr, err)
	}
	defer c.Close()
	if err := s.deliver(c, m); err != nil {
		return fmt.Errorf("mail: send to %s via %s: %w", strings.Join(m.To, ", "), addr, err)
	}
	return nil
}

func (s *SMTPMailer) deliver(c *smtp.Client, m Message) error {
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !s.ImplicitTLS {
		if err := c.StartTLS(&tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}); err != nil {
			return err
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, s.Host)); err != nil {
			return err
		}
	}
	if err := c.Mail(s.From); err != nil {
		return err
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(Compose(s.From, m, time.Now())); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// Compose renders m as an RFC 5322 message with CRLF line endings.
func Compose(from string, m Message, now time.Time) []byte {
	var b strings.Builder
	header := func(k, v string) {
		// Header values come from our own templates; CR and LF are stripped anyway so
		// a workspace name can never inject a header.
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		b.WriteString(k + ": " + v + "\r\n")
	}
	header("From", from)
	header("To", strings.Join(m.To, ", "))
	header("Subject", mimeHeader(m.Subject))
	header("Date", now.UTC().Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	// net/smtp's data writer does the dot-stuffing.
	for _, line := range strings.Split(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n") {
		b.WriteString(line + "\r\n")
	}
	return []byte(b.String())
}

// mimeHeader encodes non-ASCII subjects as RFC 2047 words.
func mimeHeader(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}
