package views

import (
	"slices"

	"github.com/a-h/templ"
)

// Invalid returns the attributes of form field name when it is the one at fault
// (errField names it): aria-invalid, aria-describedby naming the element that
// holds the message (msgID), and autofocus, so the browser puts the cursor in it
// with or without JavaScript. Any other field gets no attributes.
func Invalid(errField, name, msgID string) templ.Attributes {
	if errField == "" || errField != name {
		return templ.Attributes{}
	}
	return InvalidIf("at fault", msgID)
}

// InvalidIf is Invalid for a field that holds its own error, msg: the attributes
// of a field at fault when msg is not empty, none otherwise.
func InvalidIf(msg, msgID string) templ.Attributes {
	if msg == "" {
		return templ.Attributes{}
	}
	return templ.Attributes{"aria-invalid": "true", "aria-describedby": msgID, "autofocus": true}
}

// OnField reports whether the error belongs to one of a form's fields, and so is
// shown beside it rather than above the form.
func OnField(errField string, fields ...string) bool {
	return errField != "" && slices.Contains(fields, errField)
}
