package views

// APIReference is the rendered OpenAPI document at /docs.
type APIReference struct {
	Title       string
	Version     string
	Description string
	BaseURL     string
	Auth        []APIAuth
	Operations  []APIOperation
	Schemas     []APISchema
	Errors      []APIErrorResponse
}

// APIAuth is one way of sending the key.
type APIAuth struct {
	Header      string // e.g. "Authorization: Bearer <key>"
	Description string
}

// APIOperation is one method on one path.
type APIOperation struct {
	ID          string // the anchor
	Method      string // GET, POST, …
	Path        string
	Summary     string
	Description string
	NeedsKey    bool
	Params      []APIField
	Body        []APIBody
	Responses   []APIResponse
	// ExampleBody is a JSON body with the required fields; Example a curl command.
	ExampleBody string
	Example     string
}

// APIField is a parameter or one (possibly nested, dotted) field of a body.
type APIField struct {
	Name        string
	In          string // query, path, header; empty for body fields
	Type        []APIToken
	Required    bool
	Description string
	Constraints string
}

// APIToken is a piece of a type's name, linked when it names a schema.
type APIToken struct {
	Text   string
	Anchor string
}

// APIBody is a request body of one content type.
type APIBody struct {
	ContentType string
	Required    bool
	Type        []APIToken
	Fields      []APIField
}

// APIResponse is one status an operation answers with.
type APIResponse struct {
	Status      string
	OK          bool
	Description string
	Content     []APIMedia
	Headers     []string
}

// APIMedia is a response's body of one content type.
type APIMedia struct {
	ContentType string
	Type        []APIToken
}

// APISchema is a named schema of the document.
type APISchema struct {
	Name        string
	Anchor      string
	Type        []APIToken
	Description string
	Constraints string
	Fields      []APIField
}

// APIErrorResponse is one of the shared error responses.
type APIErrorResponse struct {
	Status      string
	Description string
}
