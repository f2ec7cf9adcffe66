package server

import (
	"net"
	"net/netip"

	"github.com/labstack/echo/v4"
)

// clientIP returns how a replica learns a request's client address, which per-IP
// limits (keyless API calls, log-in, sign-up) and the audit log key on. By default
// the peer address is the client and X-Forwarded-For is ignored, since anyone can
// send one. With TRUSTED_PROXIES, a request from one of those addresses is credited
// to the rightmost X-Forwarded-For entry that is not itself a trusted proxy, so a
// client can prepend whatever it likes and still be counted as itself.
func clientIP(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	// echo trusts loopback, link-local and private ranges unless told otherwise.
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{
			IP:   p.Addr().AsSlice(),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
