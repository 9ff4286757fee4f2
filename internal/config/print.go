package config

import (
	"bufio"
	"encoding"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/meerkat-xmpp/meerkat/internal/module"
)

// Print writes c as a TOML document with a comment for every key,
// followed by every registered module with its defaults: the output of
// `meerkat config print`, a valid configuration file.
func Print(w io.Writer, c Config) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# Meerkat configuration. Every key is shown with its default value.")
	printStruct(bw, reflect.ValueOf(c), "")
	for _, f := range module.Factories() {
		fmt.Fprintf(bw, "\n# %s\n[modules.%s]\n", f.Doc, f.Name)
		fmt.Fprintf(bw, "# Run this module.\nenabled = %t\n", f.EnabledByDefault)
		if f.Config != nil {
			printFields(bw, reflect.ValueOf(f.Config()).Elem())
		}
	}
	return bw.Flush()
}

// printStruct prints the scalar fields of v, then each struct field as a
// table named prefix + key.
func printStruct(w io.Writer, v reflect.Value, prefix string) {
	printFields(w, v)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := strings.Split(f.Tag.Get("toml"), ",")[0]
		if key == "" || key == "-" || !isTable(f.Type) {
			continue
		}
		fmt.Fprintf(w, "\n# %s\n[%s%s]\n", f.Tag.Get("comment"), prefix, key)
		printStruct(w, v.Field(i), prefix+key+".")
	}
}

func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !t.Implements(reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem())
}

func printFields(w io.Writer, v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := strings.Split(f.Tag.Get("toml"), ",")[0]
		if key == "" || key == "-" || isTable(f.Type) {
			continue
		}
		if c := f.Tag.Get("comment"); c != "" {
			fmt.Fprintf(w, "# %s\n", c)
		}
		fmt.Fprintf(w, "%s = %s\n", key, tomlValue(v.Field(i)))
	}
}

// tomlValue renders a scalar or an array of scalars.
func tomlValue(v reflect.Value) string {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, _ := m.MarshalText()
		return strconv.Quote(string(b))
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int64, reflect.Int32:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = tomlValue(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprintf("%q", fmt.Sprint(v.Interface()))
}
