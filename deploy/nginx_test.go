package deploy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nginxBinary returns Debian's nginx, skipping the test where it is not installed
// except in CI, where .ci/run installs it.
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if os.Getenv("CI") == "" {
		t.Skip("nginx is not installed (apt-get install nginx); test skipped")
	}
	t.Fatal("nginx is not installed; CI must install it")
	return ""
}

// nginxSite is the shipped nginx/cairn.conf with only what a test machine must
// change: the replicas' addresses, the listening ports and the certificate. Each
// substitution must match exactly once, so a change to the shipped file that the
// test would silently miss fails it instead.
type nginxSite struct {
	Replicas        []string // host:port of each replica
	HTTPS, HTTP     string   // 127.0.0.1:port for the TLS and the redirect server
	CertFile, Key   string
	UpstreamOptions string // the options the shipped file gives each replica
}

var shippedUpstream = regexp.MustCompile(`(?m)^(\s*)server 10\.0\.0\.\d+:8080 ([^;]*);\n`)

func (s *nginxSite) render(t *testing.T, shipped string) string {
	t.Helper()
	servers := shippedUpstream.FindAllStringSubmatch(shipped, -1)
	if len(servers) == 0 {
		t.Fatal("nginx/cairn.conf: no upstream server lines like `server 10.0.0.11:8080 …;`")
	}
	s.UpstreamOptions = servers[0][2]
	var lines strings.Builder
	for _, r := range s.Replicas {
		fmt.Fprintf(&lines, "%sserver %s %s;\n", servers[0][1], r, s.UpstreamOptions)
	}
	first := true
	out := shippedUpstream.ReplaceAllStringFunc(shipped, func(string) string {
		if first {
			first = false
			return lines.String()
		}
		return ""
	})
	for _, sub := range [][2]string{
		{"listen 443 ssl http2;", "listen " + s.HTTPS + " ssl http2;"},
		{"listen 80;", "listen " + s.HTTP + ";"},
		{"/etc/ssl/cairn/fullchain.pem", s.CertFile},
		{"/etc/ssl/cairn/privkey.pem", s.Key},
	} {
		if n := strings.Count(out, sub[0]); n != 1 {
			t.Fatalf("nginx/cairn.conf: %q occurs %d times, want once", sub[0], n)
		}
		out = strings.Replace(out, sub[0], sub[1], 1)
	}
	return out
}

// nginx is a running nginx master process.
type nginx struct {
	cmd *exec.Cmd
	dir string
}

// startNginx writes a main configuration that includes site, checks it with
// nginx -t and runs nginx in the foreground until the test ends.
func startNginx(t *testing.T, bin, dir, site string, cert *x509.Certificate) *nginx {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "cairn.conf"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;" // workers would be nobody, who cannot use the test's directory
	}
	main := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/cairn.conf;
}
`, user, dir)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t refuses the shipped configuration: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-g", "daemon off;")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so its workers die with it
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return &nginx{cmd: cmd, dir: dir}
}

// errorLog returns what nginx logged, for failure messages.
func (n *nginx) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b)
}

// httpsClient returns a client that trusts cert and sends every request for
// cairn.example.com to addr, over HTTP/2 when nginx offers it.
func httpsClient(cert *x509.Certificate, addr string) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: "cairn.example.com"},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 64,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// selfSigned writes a certificate and key for cairn.example.com into dir.
func selfSigned(t *testing.T, dir string) (cert *x509.Certificate, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cairn.example.com"},
		DNSNames:     []string{"cairn.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, certFile, keyFile
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// outcome is one request of the load.
type outcome struct {
	at     time.Time // when it was sent
	what   string
	status int
	err    error
}

// recorder collects outcomes from concurrent workers.
type recorder struct {
	mu  sync.Mutex
	all []outcome
}

func (r *recorder) add(o outcome) {
	r.mu.Lock()
	r.all = append(r.all, o)
	r.mu.Unlock()
}

// between returns the outcomes sent in [from, to) and the failed ones among them.
func (r *recorder) between(from, to time.Time) (all, failed []outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.all {
		if o.at.Before(from) || !o.at.Before(to) {
			continue
		}
		all = append(all, o)
		if o.err != nil || o.status < 200 || o.status > 299 {
			failed = append(failed, o)
		}
	}
	return all, failed
}

func describe(failed []outcome) string {
	var b strings.Builder
	for i, o := range failed {
		if i == 10 {
			fmt.Fprintf(&b, "\n  … and %d more", len(failed)-10)
			break
		}
		fmt.Fprintf(&b, "\n  %s %s: status %d err %v", o.at.Format("15:04:05.000"), o.what, o.status, o.err)
	}
	return b.String()
}
