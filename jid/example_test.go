package jid_test

import (
	"errors"
	"fmt"

	"github.com/meerkat-xmpp/meerkat/jid"
)

func ExampleParse() {
	j, err := jid.Parse("JuLiEt@Example.COM/Balcony")
	if err != nil {
		panic(err)
	}
	fmt.Println(j)
	fmt.Println(j.Local(), j.Domain(), j.Resource())
	fmt.Println(j.Bare(), j.IsBare(), j.Bare().IsBare())
	fmt.Println(j == jid.MustParse("juliet@example.com./Balcony"))

	_, err = jid.Parse("foo bar@example.com")
	fmt.Println(errors.Is(err, jid.ErrLocalpart))
	// Output:
	// juliet@example.com/Balcony
	// juliet example.com Balcony
	// juliet@example.com false true
	// true
	// true
}

func ExampleNew() {
	j, err := jid.New("\u03A3", "xn--bcher-kva.example", "\u265A")
	fmt.Println(j, err)
	// Output:
	// σ@bücher.example/♚ <nil>
}
