// Package views renders Cairn's HTML with templ. Handlers pass the view models
// defined here, never database rows.
package views

// Shell is what every dashboard page's frame needs.
type Shell struct {
	Title     string
	Active    string // the nav item to highlight: overview, documents, keys, usage, billing, team, settings
	CSRF      string
	UserEmail string
	Workspace Workspace
	// Nav is the sidebar: the pages the person's role may open.
	Nav []NavItem
	// Allowed holds "METHOD /route" for every dashboard route the person's role
	// may use, so pages hide what the server would refuse.
	Allowed map[string]bool
	// Workspaces are every workspace the person belongs to, for the switcher; empty
	// when there is only the current one.
	Workspaces []WorkspaceChoice
	// Banners are shown above the page content (quota warnings, billing grace, …).
	Banners []Message
	Flash   *Message
	// Unverified, when set, is the address the person has not verified yet: a banner
	// says so and offers to send the link again.
	Unverified string
}

// NavItem is one link of the sidebar.
type NavItem struct {
	Key, Label, Href string
}

// WorkspaceChoice is one entry of the workspace switcher.
type WorkspaceChoice struct {
	ID        string
	Name      string
	Role      string
	PlanName  string
	Current   bool
	Suspended bool
}

// Workspace is the current tenant as shown in the frame.
type Workspace struct {
	ID       string
	Name     string
	Plan     string // free, pro, enterprise
	PlanName string
	Role     string
}

// Message is a one-line notice; Kind is ok, info, warn or error. Href and Action,
// when set, add a link saying what to do (e.g. "See plans" on a limit).
type Message struct {
	Kind   string `json:"kind"`
	Text   string `json:"text"`
	Href   string `json:"href,omitempty"`
	Action string `json:"action,omitempty"`
}

// AuthForm is the sign-up or log-in form with what the person typed and what went wrong.
type AuthForm struct {
	CSRF          string
	Email         string
	Error         string
	EmailError    string
	PasswordError string
	// Next is where a successful log-in goes (a dashboard path), kept across the form.
	Next string
	// Invitation names the workspace whose invitation link led here, if any.
	Invitation string
	// Notice is a line of good news above the form (a password was just reset).
	Notice string
	// Taken is true when sign-up was refused because the address has an account:
	// the form then offers to reset its password.
	Taken bool
}

// ResetForm is the page an emailed reset link opens: a new password for the account.
type ResetForm struct {
	CSRF  string
	Token string
	// Error says why the password was refused (the policy), or why the link no
	// longer works (then Dead is true and there is no form).
	Error string
	Dead  bool
}

// Overview is the dashboard's landing page.
type Overview struct {
	BaseURL       string
	ActiveKeys    int
	KeyLimit      string
	PlanName      string
	RequestsUsed  int64
	RequestsLimit string // "Unlimited" or a number
	RequestsPct   int    // 0..100, or -1 when unlimited
	Documents     int64
	DocumentLimit string
	// Steps is the getting-started checklist; empty once it is dismissed or done,
	// and for people who cannot act on it (viewers).
	Steps []OnboardingStep
}

// OnboardingStep is one item of the Overview's getting-started checklist, ticked
// from what exists in the workspace.
type OnboardingStep struct {
	ID    string
	Title string
	Done  bool
}

// StepsDone counts the checklist's ticked steps.
func StepsDone(steps []OnboardingStep) int {
	n := 0
	for _, s := range steps {
		if s.Done {
			n++
		}
	}
	return n
}

// Keys is the API keys page.
type Keys struct {
	// Keys are the keys that are not revoked (expired ones included); Revoked the rest.
	Keys    []Key
	Revoked []Key
	New     *NewKey
	Error   string
	// ErrorField names the creation form's field at fault, if any.
	ErrorField string
	// Name, Scopes and ExpiresInDays are what the creation form was sent with.
	Name          string
	Scopes        []string
	ExpiresInDays string
	ScopeOptions  []ScopeOption
	Active        int
	Limit         string
	AtLimit       bool
	// CanManage shows every key of the workspace with its creator; otherwise only
	// the person's own keys are listed and OthersActive counts the rest.
	CanManage    bool
	OthersActive int
}

// ScopeOption is one scope's checkbox on the creation form.
type ScopeOption struct {
	Name    string
	Checked bool
}

// Key is one row of the keys table.
type Key struct {
	ID      string
	Name    string
	Prefix  string
	Creator string // who made it, shown to admins
	// Device is set for keys a device sign-in made; Name is then the device's.
	Device  bool
	Scopes  string
	Created string
	Expires string
	Expired bool
	// LastUsed, LastIP and LastUserAgent say when and from where it was last used.
	LastUsed      string
	LastIP        string
	LastUserAgent string
	// Previous lists the old secrets of a roll that still work, with until when.
	Previous  []string
	Revoked   string
	IsRevoked bool
}

// NewKey is a key just created or rolled: the only time its secret is shown.
type NewKey struct {
	Name    string
	Secret  string
	Scopes  string
	Expires string
	// Rolled is set after a roll; OldUntil says until when the old secret works
	// ("" when it stopped at once).
	Rolled   bool
	OldUntil string
}

// PlanCard is one plan on the pricing and billing pages.
type PlanCard struct {
	ID       string
	Name     string
	Price    string
	Features []string
	Current  bool
}

// Billing is the billing page.
type Billing struct {
	// Enabled is false when Stripe is not configured; the page then says so (how to
	// configure it is for operators, in the README).
	Enabled   bool
	CanManage bool
	PlanName  string
	Plans     []PlanCard
	// Subscribed means the workspace pays through a live subscription, so plan
	// changes go through the Customer Portal instead of Checkout.
	Subscribed   bool
	HasPortal    bool
	Subscription *BillingSubscription
	// OverLimits explain what is beyond the plan's caps (after a downgrade).
	OverLimits []string
	// Account is how the workspace pays and its invoices; nil when there is nothing
	// to show or the person may not see it.
	Account *BillingAccount
}

// BillingSubscription is the workspace's subscription as the billing page shows it.
type BillingSubscription struct {
	PlanName string
	Status   string // Stripe's status, e.g. active, past_due
	Detail   string // renewal, cancellation or grace deadline, in words
	// Ending is set when the subscription is canceled and ends at the period's end.
	Ending bool
}

// BillingAccount is what Stripe holds for the workspace: how it pays and its latest invoices.
type BillingAccount struct {
	PaymentMethod string
	Invoices      []BillingInvoice
	// Problem, when set, says these could not be read from Stripe (or are from an
	// earlier read).
	Problem string
}

// BillingInvoice is one row of the invoices table.
type BillingInvoice struct {
	Number string
	Date   string
	Amount string // e.g. "$10.00"
	Status string
	URL    string
}

// BillingReturn is the page Stripe Checkout sends people back to.
type BillingReturn struct {
	Canceled bool
	PlanName string
	// Paid is true once the webhook has moved the workspace off Free; until then the page polls.
	Paid bool
}

// Usage is the usage page: the last 30 days of requests.
type Usage struct {
	PlanName      string
	RequestsUsed  int64
	RequestsLimit string // "Unlimited" or a number
	RequestsPct   int    // 0..100, or -1 when unlimited
	ResetsOn      string
	Total         int64
	Billable      int64
	Chart         Chart
	ByKey         []UsageRow
	ByEndpoint    []UsageRow
	ByStatus      []UsageRow
}

// UsageRow is one line of a usage breakdown; Share (0..100) sizes its bar.
type UsageRow struct {
	Label    string
	Detail   string // e.g. a key's prefix or an endpoint's mean latency
	Muted    bool
	Requests int64
	Billable int64
	Share    int
}

// Chart is a bar chart computed on the server and drawn as SVG; coordinates are
// in the SVG's user units.
type Chart struct {
	Width, Height int
	Bars          []ChartBar
	YTicks        []ChartTick
	XLabels       []ChartTick
	PlotLeft      int
	PlotRight     int
	Baseline      int
	Summary       string // text alternative for screen readers
}

// ChartBar is one day: the total bar and, inside it, the billable part.
type ChartBar struct {
	X, W        int
	Y, H        int // total requests
	BY, BH      int // billable requests
	Title       string
	Day         string // ISO date, for tests and tooltips
	Requests    int64
	BillableReq int64
}

// ChartTick is a labelled position on an axis.
type ChartTick struct {
	Pos   int
	Label string
}

// Documents is the documents page: a page of the workspace's documents and, when a
// query was typed, the passages that match it.
type Documents struct {
	Docs       []DocumentRow
	Stored     string // "12 of 500"
	NextCursor string
	Query      string
	Results    []SearchResult
	Searched   bool
	// Error says why the search failed (a bad query, a limit with the way past it).
	Error *Message
	// Question is what was asked; Answer its answer, or AskError why there is none.
	Question string
	Answer   *Answer
	AskError *Message
	// ErrorField names the field at fault of the search ("query") or of the
	// question ("question").
	ErrorField string
	// Reembedding is the workspace's re-embedding in progress, if any.
	Reembedding *EmbedderSwitch
}

// DocumentRow is one row of the documents table.
type DocumentRow struct {
	ID      string
	Title   string
	URL     string
	Chunks  int
	Created string
	// Failed is why the document could not be indexed ("" when it is searchable).
	Failed string
}

// SearchResult is one matching passage.
type SearchResult struct {
	DocumentID string
	Title      string
	URL        string
	// Snippet is the passage around the first match, the query's words marked.
	Snippet []TextSpan
}

// TextSpan is a piece of text; Mark highlights it (a word the query asked for).
type TextSpan struct {
	Text string `json:"text"`
	Mark bool   `json:"mark,omitempty"`
}

// Answer is an answer to a question about the workspace's documents.
type Answer struct {
	Text string
	// Extractive answers are the documents' own best sentences, not written by a model.
	Extractive bool
	Citations  []Citation
}

// Citation is a source an answer cites as [N].
type Citation struct {
	N          int        `json:"n"`
	DocumentID string     `json:"document_id"`
	Title      string     `json:"title"`
	URL        string     `json:"url"` // "" unless http(s)
	Snippet    []TextSpan `json:"snippet"`
}

// Embedder is the workspace's embedder settings.
type Embedder struct {
	// ErrorField names the form's field at fault, if any.
	ErrorField string
	Provider   string // builtin, openai or custom: the current choice, or what was just submitted
	Current    string // a person's name for the embedder in use
	Model      string // the name its vectors are stored under
	// The custom endpoint's fields, as stored or as submitted.
	BaseURL       string
	EndpointModel string
	Dimensions    int
	KeyStored     bool
	ServerOpenAI  bool // the server has an OpenAI key
	PlanHasOpenAI bool // the workspace's plan includes it
	CanStoreKeys  bool // the server has an ENCRYPTION_KEY
	Switch        *EmbedderSwitch
	Error         string
}

// EmbedderSwitch is a re-embedding in progress.
type EmbedderSwitch struct {
	Name        string
	Done, Total int64
	Error       string
}

// Activate is the device sign-in page: the code the device shows, what asked for
// it, and the workspaces the person may put its key in.
type Activate struct {
	// ErrorField names the form's field at fault, if any.
	ErrorField string
	Code       string
	Error      string
	// Device is set once the code names a waiting sign-in.
	Device     *ActivateDevice
	Workspaces []ActivateWorkspace
	// Abilities says in words what the device's key will be able to do.
	Abilities []string
}

// ActivateDevice is a waiting sign-in as the person approving it sees it.
type ActivateDevice struct {
	ClientName string
	IP         string
	UserAgent  string
	Requested  string
	Expires    string
}

// ActivateWorkspace is one workspace the device's key could go to.
type ActivateWorkspace struct {
	ID       string
	Name     string
	Role     string
	Selected bool
	// Disabled explains why the person cannot pick it (their role), or is "".
	Disabled string
}

// ActivateDone is the page after a decision.
type ActivateDone struct {
	Approved      bool
	ClientName    string
	WorkspaceName string
}

// Team is the Team page: members, pending invitations and what the person may do.
type Team struct {
	// ErrorField names the invitation form's field at fault, if any.
	ErrorField  string
	Members     []TeamMember
	Invitations []TeamInvitation
	// CanManage shows the invitation form and the role and remove controls.
	CanManage bool
	IsOwner   bool
	// TeamPlan is false on plans without teams; UpgradePlan names the one with them.
	TeamPlan    bool
	UpgradePlan string
	Seats       string // "3 of 25 seats used (2 members, 1 pending invitation)"
	SeatsFull   bool
	// Suspended explains, after a downgrade, who is suspended and how they come back.
	Suspended string
	// Transfer lists the members who can become the owner.
	Transfer []TeamMember
	Roles    []string // the roles an invitation or role change can give
	// Form state of the invitation form after an error.
	Error string
	Email string
	Role  string
}

// TeamMember is one row of the members table.
type TeamMember struct {
	UserID     string
	Email      string
	Role       string
	Joined     string
	Suspended  bool
	ActiveKeys int
	IsYou      bool
	// CanChange shows the role and remove controls for this row.
	CanChange bool
	// RemoveConfirm is the confirmation shown before removing, listing the keys
	// that removal revokes.
	RemoveConfirm string
}

// TeamInvitation is one pending invitation.
type TeamInvitation struct {
	ID        string
	Email     string
	Role      string
	InvitedBy string
	Expires   string
	Expired   bool
}

// InvitationView is the page behind an invitation's link.
type InvitationView struct {
	CSRF      string
	Token     string
	Workspace string
	Role      string
	Email     string // the invited address
	InvitedBy string
	Expires   string
	// SignedInAs is the visitor's email when signed in.
	SignedInAs string
	// Error says why the link cannot be used (or accepting failed).
	Error string
}

// AuditPage is the audit log page: one page of filtered entries.
type AuditPage struct {
	// ErrorField names the form's field at fault, if any.
	ErrorField string
	// Shown is false on plans without the audit log; the page then says the log is
	// kept and how to see it.
	Shown       bool
	UpgradePlan string
	Rows        []AuditRow
	Actors      []string // suggestions for the actor filter
	Actions     []string
	Actor       string
	Action      string
	From        string
	To          string
	Error       string
	// Older is the link to the next page of older entries; empty on the last page.
	Older string
	// Newest links back to the first page past it, with the same filters.
	Newest string
	Export string // the CSV link with the same filters
}

// AuditRow is one entry of the audit log.
type AuditRow struct {
	At        string
	Actor     string
	Action    string
	Target    string
	Detail    string
	IP        string
	UserAgent string
}

// Settings is the person's account and the workspace's settings page.
type Settings struct {
	Email         string
	EmailVerified bool
	// EmailSentTo is the new address a verification link was just sent to.
	EmailSentTo   string
	WorkspaceName string
	Sessions      []SessionRow
	// What was typed in a refused form (never a password) and why each field was refused.
	NewEmail, NewName string
	Errors            map[string]string
}

// SessionRow is one signed-in browser of the person.
type SessionRow struct {
	ID       string
	Device   string
	IP       string
	Started  string
	LastSeen string
	Current  bool
}
