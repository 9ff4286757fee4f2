package sqlite

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// TestClosedStore: every method of a closed store fails with an error —
// none panics, none pretends to have worked — so that a storage failure
// reaches the modules as an error they answer (internal-server-error)
// rather than as a crash or silently lost data.
func TestClosedStore(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	user := jid.MustParse("alice@example.com")
	var arg func(tp reflect.Type) reflect.Value
	arg = func(tp reflect.Type) reflect.Value {
		switch {
		case tp == reflect.TypeFor[context.Context]():
			return reflect.ValueOf(ctx)
		case tp == reflect.TypeFor[jid.JID]():
			return reflect.ValueOf(user)
		case tp == reflect.TypeFor[time.Time]():
			return reflect.ValueOf(time.Now())
		}
		v := reflect.New(tp).Elem()
		switch tp.Kind() {
		case reflect.String:
			v.SetString("x")
		case reflect.Int, reflect.Int64, reflect.Int32:
			v.SetInt(1)
		case reflect.Uint64, reflect.Uint32, reflect.Uint:
			v.SetUint(1)
		case reflect.Slice:
			v = reflect.MakeSlice(tp, 1, 1)
			v.Index(0).Set(arg(tp.Elem()))
		case reflect.Struct:
			// Fill the JIDs and strings a method checks before storing.
			for i := range tp.NumField() {
				if f := v.Field(i); f.CanSet() {
					switch ft := tp.Field(i).Type; {
					case ft == reflect.TypeFor[jid.JID](), ft.Kind() == reflect.String:
						f.Set(arg(ft))
					}
				}
			}
		}
		return v
	}
	errType := reflect.TypeFor[error]()
	v := reflect.ValueOf(s)
	checked := 0
	for i := range v.NumMethod() {
		m := v.Type().Method(i)
		mt := m.Type
		if m.Name == "Close" || mt.NumOut() == 0 || mt.Out(mt.NumOut()-1) != errType || mt.NumIn() < 2 || mt.In(1) != reflect.TypeFor[context.Context]() {
			continue // not a storage call
		}
		args := []reflect.Value{}
		for j := 1; j < mt.NumIn(); j++ {
			args = append(args, arg(mt.In(j)))
		}
		t.Run(m.Name, func(t *testing.T) {
			call := v.Method(i).Call
			if mt.IsVariadic() {
				call = v.Method(i).CallSlice
			}
			out := call(args)
			if e := out[len(out)-1]; e.IsNil() {
				t.Errorf("no error from a closed store")
			} else if msg := e.Interface().(error).Error(); !strings.Contains(msg, "closed") {
				t.Logf("error: %s", msg)
			}
		})
		checked++
	}
	if checked < 40 {
		t.Fatalf("only %d methods checked", checked)
	}
}
