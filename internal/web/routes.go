package web

import (
	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/views"
)

// Routes mounts every dashboard route on e.
func (h *Handler) Routes(e *echo.Echo) {
	// Stripe signs its webhooks; they carry no session or CSRF token.
	e.POST("/webhooks/stripe", h.stripeWebhook)

	// authorize applies access.go's table to every route of the group.
	pub := e.Group("", limitBody, h.withSession, h.csrf, h.authorize)
	pub.GET("/", h.showHome)
	pub.GET("/signup", h.showSignup)
	pub.POST("/signup", h.signup, h.limitForm(metering.ScopeSignup, views.Signup))
	pub.GET("/login", h.showLogin)
	pub.POST("/login", h.login, h.limitForm(metering.ScopeLogin, views.Login))
	pub.POST("/logout", h.logout)
	pub.GET("/password/forgot", h.showForgotPassword)
	pub.POST("/password/forgot", h.forgotPassword, h.limitForm(metering.ScopePasswordReset, func(f views.AuthForm) templ.Component { return views.ForgotPassword(f, false) }))
	pub.GET("/password/reset/:token", h.showResetPassword)
	pub.POST("/password/reset/:token", h.resetPassword)
	pub.GET("/verify-email/:token", h.verifyEmail)
	pub.POST("/verify-email/resend", h.resendVerification)
	pub.GET("/docs", h.showDocs)
	pub.GET("/activate", h.showActivate)
	pub.POST("/activate", h.activate)
	pub.GET("/invitations/:token", h.showInvitation)
	pub.POST("/invitations/:token/accept", h.acceptInvitation)

	dash := pub.Group("/dashboard")
	dash.GET("", h.showOverview)
	dash.POST("/onboarding/dismiss", h.dismissOnboarding)
	dash.GET("/extension", h.showExtension)
	dash.GET("/extension/download", h.downloadExtension)
	dash.GET("/keys", h.showAPIKeys)
	dash.POST("/keys", h.createAPIKey)
	dash.POST("/keys/:id/revoke", h.revokeAPIKey)
	dash.POST("/keys/:id/roll", h.rollAPIKey)
	dash.GET("/documents", h.showDocuments)
	dash.GET("/documents/search", h.searchDocuments)
	dash.POST("/documents/delete", h.deleteDocument)
	dash.POST("/documents/ask", h.askDocuments)
	dash.GET("/usage", h.showUsage)
	dash.GET("/usage.csv", h.exportUsage)
	dash.GET("/billing", h.showBilling)
	dash.POST("/billing/checkout", h.billingCheckout)
	dash.POST("/billing/portal", h.billingPortal)
	dash.GET("/billing/success", h.billingSuccess)
	dash.GET("/billing/cancel", h.billingCancel)
	dash.POST("/workspaces/:id/switch", h.switchWorkspace)
	dash.GET("/team", h.showTeam)
	dash.POST("/team/invitations", h.invite)
	dash.POST("/team/invitations/:id/resend", h.resendInvitation)
	dash.POST("/team/invitations/:id/revoke", h.revokeInvitation)
	dash.POST("/team/members/:user_id/role", h.changeRole)
	dash.POST("/team/members/:user_id/remove", h.removeMember)
	dash.POST("/team/leave", h.leaveWorkspace)
	dash.POST("/team/transfer", h.transferOwnership)
	dash.GET("/audit", h.showAudit)
	dash.GET("/audit.csv", h.exportAudit)
	dash.GET("/settings/embedder", h.showEmbedder)
	dash.POST("/settings/embedder", h.saveEmbedder)
	dash.GET("/settings", h.showSettings)
	dash.GET("/settings/export", h.exportAccount)
	dash.POST("/settings/delete", h.deleteAccount)
	dash.POST("/settings/password", h.changePassword)
	dash.POST("/settings/email", h.changeEmail)
	dash.POST("/settings/workspace", h.renameWorkspace)
	dash.POST("/settings/sessions/:id/end", h.endSession)
	dash.POST("/settings/sessions/end-others", h.endOtherSessions)

	h.routes = map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method != echo.RouteNotFound {
			h.routes[r.Method+" "+r.Path] = true
		}
	}
}
