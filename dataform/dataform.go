// Package dataform reads and writes XEP-0004 data forms, the way MAM
// queries (XEP-0313), Inbox queries and MUC Light configurations carry
// their fields.
package dataform

import (
	"errors"
	"fmt"
	"strings"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// NS is the data forms namespace (XEP-0004 §3).
const NS = "jabber:x:data"

// Form types (XEP-0004 §3.1).
const (
	TypeForm   = "form"
	TypeSubmit = "submit"
	TypeCancel = "cancel"
	TypeResult = "result"
)

// Field types (XEP-0004 §3.3) used here.
const (
	Boolean     = "boolean"
	Fixed       = "fixed"
	Hidden      = "hidden"
	JIDSingle   = "jid-single"
	ListSingle  = "list-single"
	ListMulti   = "list-multi"
	TextSingle  = "text-single"
	TextMulti   = "text-multi"
	FormTypeVar = "FORM_TYPE"
)

// Form is a data form.
type Form struct {
	Type         string
	Title        string
	Instructions string
	Fields       []Field
}

// Field is one field of a form.
type Field struct {
	Var      string
	Type     string // empty: text-single (XEP-0004 §3.3)
	Label    string
	Required bool
	Values   []string
	Options  []Option
}

// Option is a choice of a list field.
type Option struct {
	Label, Value string
}

// New returns a form of type typ whose FORM_TYPE is formType (none if
// empty), as XEP-0068 registers them.
func New(typ, formType string) *Form {
	f := &Form{Type: typ}
	if formType != "" {
		f.Fields = append(f.Fields, Field{Var: FormTypeVar, Type: Hidden, Values: []string{formType}})
	}
	return f
}

// Add appends a field and returns the form.
func (f *Form) Add(fl Field) *Form {
	f.Fields = append(f.Fields, fl)
	return f
}

// Field returns the field named name, or nil.
func (f *Form) Field(name string) *Field {
	for i := range f.Fields {
		if f.Fields[i].Var == name {
			return &f.Fields[i]
		}
	}
	return nil
}

// Value returns the first value of the field named name, and whether the
// form has that field.
func (f *Form) Value(name string) (string, bool) {
	fl := f.Field(name)
	if fl == nil {
		return "", false
	}
	if len(fl.Values) == 0 {
		return "", true
	}
	return fl.Values[0], true
}

// FormType returns the value of the FORM_TYPE field (XEP-0068), or "".
func (f *Form) FormType() string {
	v, _ := f.Value(FormTypeVar)
	return v
}

// Bool reads a boolean value (XEP-0004 §3.3: "0", "1", "false", "true").
func Bool(v string) (bool, error) {
	switch v {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("dataform: %q is not a boolean", v)
}

// ErrNotAForm is returned by Parse for an element that is not a data form.
var ErrNotAForm = errors.New("dataform: not a jabber:x:data <x/> element")

// Parse reads a form element. A field of a form other than a result or
// form-type form must have a 'var' (XEP-0004 §3.2), unless it is fixed.
func Parse(el *xmlstream.Element) (*Form, error) {
	if el == nil || el.Name != "x" || el.NS != NS {
		return nil, ErrNotAForm
	}
	f := &Form{Type: el.Attr("type")}
	switch f.Type {
	case TypeForm, TypeSubmit, TypeCancel, TypeResult:
	default:
		return nil, fmt.Errorf("dataform: unknown form type %q", f.Type)
	}
	for c := range el.Elements() {
		if c.NS != NS {
			continue
		}
		switch c.Name {
		case "title":
			f.Title = c.Text()
		case "instructions":
			if f.Instructions != "" {
				f.Instructions += "\n"
			}
			f.Instructions += c.Text()
		case "field":
			fl := Field{Var: c.Attr("var"), Type: c.Attr("type"), Label: c.Attr("label")}
			if fl.Var == "" && fl.Type != Fixed {
				return nil, errors.New("dataform: a field without 'var'")
			}
			for v := range c.Elements() {
				if v.NS != NS {
					continue
				}
				switch v.Name {
				case "value":
					fl.Values = append(fl.Values, v.Text())
				case "required":
					fl.Required = true
				case "option":
					fl.Options = append(fl.Options, Option{Label: v.Attr("label"), Value: v.ChildText("value", NS)})
				}
			}
			if f.Field(fl.Var) != nil && fl.Var != "" {
				return nil, fmt.Errorf("dataform: field %q twice", fl.Var)
			}
			f.Fields = append(f.Fields, fl)
		}
	}
	return f, nil
}

// Element serializes the form.
func (f *Form) Element() *xmlstream.Element {
	x := xmlstream.NewElement("x", NS).SetAttr("type", f.Type)
	if f.Title != "" {
		x.AddChild(xmlstream.NewElement("title", NS).AddText(f.Title))
	}
	for line := range strings.SplitSeq(f.Instructions, "\n") {
		if line != "" {
			x.AddChild(xmlstream.NewElement("instructions", NS).AddText(line))
		}
	}
	for _, fl := range f.Fields {
		fe := xmlstream.NewElement("field", NS)
		if fl.Var != "" {
			fe.SetAttr("var", fl.Var)
		}
		if fl.Type != "" {
			fe.SetAttr("type", fl.Type)
		}
		if fl.Label != "" {
			fe.SetAttr("label", fl.Label)
		}
		if fl.Required {
			fe.AddChild(xmlstream.NewElement("required", NS))
		}
		for _, v := range fl.Values {
			fe.AddChild(xmlstream.NewElement("value", NS).AddText(v))
		}
		for _, o := range fl.Options {
			oe := xmlstream.NewElement("option", NS)
			if o.Label != "" {
				oe.SetAttr("label", o.Label)
			}
			fe.AddChild(oe.AddChild(xmlstream.NewElement("value", NS).AddText(o.Value)))
		}
		x.AddChild(fe)
	}
	return x
}
