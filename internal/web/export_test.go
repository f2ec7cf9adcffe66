package web

// RouteAccess exposes the access table to the external tests that walk the router.
var RouteAccess = routeAccess
