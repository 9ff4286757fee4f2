package xmlstream

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// This file holds what the tests and benchmarks compare with: Go's
// encoding/xml decoding the same input into an equivalent tree.

// stdElement reads one element with encoding/xml, start already read, and
// builds the equivalent Element.
func stdElement(d *xml.Decoder, start xml.StartElement) (*Element, error) {
	e := &Element{Name: start.Name.Local, NS: start.Name.Space}
	for _, a := range start.Attr {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		e.Attrs = append(e.Attrs, Attr{Name: a.Name.Local, NS: a.Name.Space, Value: a.Value})
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			c, err := stdElement(d, t)
			if err != nil {
				return nil, err
			}
			e.Children = append(e.Children, Node{Elem: c})
		case xml.CharData:
			e.Children = append(e.Children, Node{Text: string(t)})
		case xml.EndElement:
			return e, nil
		}
	}
}

// stdStream decodes a whole stream with encoding/xml and returns its
// first-level elements.
func stdStream(data []byte) ([]*Element, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var els []*Element
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return els, nil
		}
		if err != nil {
			return els, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				depth = 1
				continue
			}
			el, err := stdElement(d, t)
			if err != nil {
				return els, err
			}
			els = append(els, el)
		case xml.EndElement:
			depth = 0
		}
	}
}

// stdAccepts reports whether encoding/xml finds data well-formed as far as
// it goes (a stream cut short is fine).
func stdAccepts(data []byte) (bool, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	for {
		_, err := d.Token()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			var serr *xml.SyntaxError
			if errors.As(err, &serr) && strings.Contains(serr.Msg, "unexpected EOF") || errors.Is(err, io.ErrUnexpectedEOF) {
				return true, nil
			}
			return false, err
		}
	}
}

// TestDifferentialCorpus: for every corpus file encoding/xml builds the same
// trees as we do.
func TestDifferentialCorpus(t *testing.T) {
	for name, data := range corpus(t) {
		stream := wrap(data)
		ours := parseElements(t, Limits{MaxElementBytes: 1 << 20}, stream)
		theirs, err := stdStream(stream)
		if err != nil {
			t.Fatalf("%s: encoding/xml: %v", name, err)
		}
		if len(ours) != len(theirs) {
			t.Fatalf("%s: %d elements, encoding/xml %d", name, len(ours), len(theirs))
		}
		for i := range ours {
			normalizeAttrs(theirs[i])
			if !Equal(ours[i], theirs[i]) {
				t.Fatalf("%s: element %d differs:\nours   %s\ntheirs %s", name, i, ours[i], theirs[i])
			}
		}
	}
}

// TestDifferentialEdgeCases: what we accept, encoding/xml accepts too.
func TestDifferentialEdgeCases(t *testing.T) {
	for _, in := range []string{
		"<m a='x\ty'/>", "<m>a\r\nb</m>", "<m><![CDATA[]]]]><![CDATA[>]]]></m>", "<m>&#x10FFFF;</m>",
		"<m><größe xmlns='urn:x'>ü</größe></m>", "<c:m xmlns:c='jabber:client'/>",
	} {
		stream := []byte(testHeader + in + "</stream:stream>")
		if _, err := feedChunks(ModeStream, Limits{}, stream); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if ok, err := stdAccepts(stream); !ok {
			t.Errorf("%q: encoding/xml: %v", in, err)
		}
	}
}

// normalizeAttrs applies attribute-value normalization (XML §3.3.3), which
// encoding/xml does not do. The corpus has no character references to
// white space in attribute values, so this gives what a conforming parser
// reports.
func normalizeAttrs(e *Element) {
	r := strings.NewReplacer("\r\n", " ", "\t", " ", "\n", " ", "\r", " ")
	for i := range e.Attrs {
		e.Attrs[i].Value = r.Replace(e.Attrs[i].Value)
	}
	for c := range e.Elements() {
		normalizeAttrs(c)
	}
}
