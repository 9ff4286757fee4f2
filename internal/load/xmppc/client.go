// Package xmppc is the load generator's XMPP client: as little as a
// client needs to log in (RFC 6120: STARTTLS §5, SASL §6, binding §7; or
// direct TLS, XEP-0368; or WebSocket, RFC 7395), optionally register
// first (XEP-0077), enable stream management (XEP-0198), and then send
// prepared bytes and hand every received first-level element to a
// callback on the connection's one reader goroutine. It keeps no state
// per stanza besides pending IQs, so tens of thousands of connections fit
// in one process.
package xmppc

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Transport names.
const (
	StartTLS  = "starttls"  // TCP, upgraded with STARTTLS
	DirectTLS = "tls"       // TLS from the first byte (XEP-0368)
	WebSocket = "websocket" // wss:// URL (RFC 7395)
)

// Transports lists the transport names.
var Transports = []string{StartTLS, DirectTLS, WebSocket, Relay}

// NSSM is stream management (XEP-0198).
const NSSM = "urn:xmpp:sm:3"

// Options say how to reach and log in to a server.
type Options struct {
	Transport string // StartTLS (default), DirectTLS, WebSocket
	Addr      string // host:port; for WebSocket the wss:// URL
	Domain    string
	Source    net.IP      // local address to dial from; nil: any
	TLS       *tls.Config // nil: no verification, ServerName = Domain
	Mechanism string      // SCRAM-SHA-1/256/512 or PLAIN; "": the strongest SCRAM offered
	Keys      *KeyCache   // SCRAM salted passwords; nil: none kept
	Register  bool        // register in-band (XEP-0077) before authenticating; "conflict" is fine
	SM        bool        // enable stream management after binding
	Presence  bool        // send initial presence after binding
	Resource  string      // "" : "load"
	Timeout   time.Duration
	RelayID   uint32 // the id sent to the baseline relay (Relay transport)
}

// Register creates the account user in-band (XEP-0077) on a connection
// of its own, logs in on it (which puts the user's SCRAM keys in
// o.Keys, so that the measured logins cost the client no PBKDF2) and
// closes it; an existing account ("conflict") is not an error.
func Register(ctx context.Context, o Options, user, pass string) error {
	o.Register, o.Presence, o.SM = true, false, false
	c, _, err := Dial(ctx, o, user, pass)
	if err != nil {
		return err
	}
	c.Close() // the account exists: how the connection ends does not matter
	return nil
}

// Timing is how long the steps of a login took.
type Timing struct {
	Connect time.Duration // TCP connected (and TLS for direct TLS and WebSocket)
	Login   time.Duration // dial to resource bound (and presence sent)
}

// Conn is a logged-in client connection.
type Conn struct {
	JID  string // full JID bound
	Mech string // SASL mechanism used

	conn   net.Conn
	dec    *xmlstream.Decoder
	ws     bool
	relay  bool
	sm     bool
	wmu    sync.Mutex
	closed atomic.Bool

	handled atomic.Uint32 // stanzas received, for <a h=''/> (XEP-0198 §4)
	early   []early       // stanzas received during the login, for Run

	iqMu  sync.Mutex
	iqs   map[string]chan *xmlstream.Element
	iqSeq atomic.Uint64
}

// Dial connects, negotiates and logs in as user (a local part) with
// password pass.
func Dial(ctx context.Context, o Options, user, pass string) (*Conn, Timing, error) {
	var t Timing
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	tcfg := o.TLS
	if tcfg == nil {
		tcfg = &tls.Config{InsecureSkipVerify: true, ServerName: o.Domain}
	}
	start := time.Now()
	c := &Conn{iqs: map[string]chan *xmlstream.Element{}}
	var err error
	d := net.Dialer{}
	if o.Source != nil {
		d.LocalAddr = &net.TCPAddr{IP: o.Source}
	}
	switch o.Transport {
	case "", StartTLS:
		c.conn, err = d.DialContext(ctx, "tcp", o.Addr)
	case DirectTLS:
		cfg := tcfg.Clone()
		cfg.NextProtos = []string{"xmpp-client"}
		td := tls.Dialer{NetDialer: &d, Config: cfg}
		c.conn, err = td.DialContext(ctx, "tcp", o.Addr)
	case WebSocket:
		c.conn, err = dialWebSocket(ctx, &d, o.Addr, tcfg)
		c.ws = true
	case Relay:
		td := tls.Dialer{NetDialer: &d, Config: tcfg}
		c.conn, err = td.DialContext(ctx, "tcp", o.Addr)
		c.relay = true
	default:
		return nil, t, fmt.Errorf("xmppc: unknown transport %q", o.Transport)
	}
	if err != nil {
		return nil, t, fmt.Errorf("xmppc: connect %s: %w", o.Addr, err)
	}
	t.Connect = time.Since(start)
	if c.relay {
		if err := c.relayHello(o.RelayID); err != nil {
			c.conn.Close()
			return nil, t, fmt.Errorf("xmppc: relay hello: %w", err)
		}
		t.Login = time.Since(start)
		return c, t, nil
	}
	raw := c.conn // a TLS client made by STARTTLS sets its deadlines on it
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := c.login(ctx, o, tcfg, user, pass); err != nil {
		c.conn.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, t, fmt.Errorf("xmppc: %s: %w", user, err)
	}
	if !stop() {
		c.conn.Close()
		return nil, t, fmt.Errorf("xmppc: %s: %w", user, ctx.Err())
	}
	raw.SetDeadline(time.Time{})
	t.Login = time.Since(start)
	return c, t, nil
}

func (c *Conn) newDecoder() {
	p := xmlstream.NewParser(xmlstream.ModeStream, xmlstream.Limits{MaxElementBytes: 1 << 20, MaxTextBytes: 1 << 20})
	c.dec = xmlstream.NewDecoder(c.conn, p, 4096)
}

func (c *Conn) login(ctx context.Context, o Options, tcfg *tls.Config, user, pass string) error {
	c.newDecoder()
	to := string(xmlstream.AppendEscapedAttr(nil, o.Domain))
	feats, err := c.open(to)
	if err != nil {
		return err
	}
	if o.Transport == "" || o.Transport == StartTLS {
		if feats.Child("starttls", stanza.NSTLS) == nil {
			return errors.New("the server offers no STARTTLS")
		}
		if err := c.write([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
		el, err := c.next()
		if err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
		if el.Name != "proceed" || el.NS != stanza.NSTLS {
			return fmt.Errorf("starttls: answered %s", el.Name)
		}
		tc := tls.Client(c.conn, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("starttls: handshake: %w", err)
		}
		c.conn = tc
		c.newDecoder()
		if feats, err = c.open(to); err != nil {
			return err
		}
	}
	if o.Register {
		if err := c.register(user, pass); err != nil {
			return err
		}
	}
	mech, err := chooseMechanism(feats, o.Mechanism)
	if err != nil {
		return err
	}
	c.Mech = mech
	if err := c.authenticate(mech, user, pass, o.Keys); err != nil {
		return err
	}
	c.dec.Parser().Reset()
	if feats, err = c.open(to); err != nil {
		return err
	}
	if feats.Child("bind", stanza.NSBind) == nil {
		return errors.New("the server offers no resource binding")
	}
	res := o.Resource
	if res == "" {
		res = "load"
	}
	bind := "<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + string(xmlstream.AppendEscapedText(nil, res)) + "</resource></bind></iq>"
	if err := c.write([]byte(bind)); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	el, err := c.next()
	if err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if el.Attr("type") != "result" {
		return fmt.Errorf("bind: %s", ErrorCondition(el))
	}
	if b := el.Child("bind", stanza.NSBind); b != nil {
		c.JID = b.ChildText("jid", stanza.NSBind)
	}
	if o.SM && feats.Child("sm", NSSM) != nil {
		if err := c.write([]byte("<enable xmlns='urn:xmpp:sm:3'/>")); err != nil {
			return fmt.Errorf("sm: %w", err)
		}
		el, err := c.next()
		if err != nil {
			return fmt.Errorf("sm: %w", err)
		}
		if el.Name != "enabled" {
			return fmt.Errorf("sm: answered %s", el.Name)
		}
		c.sm = true
	}
	if o.Presence {
		// Initial presence, then a ping to the server (XEP-0199): the
		// server handles a session's stanzas in order, so once the ping
		// is answered the resource is available and messages to the bare
		// JID reach it rather than offline storage.
		if err := c.write([]byte("<presence xmlns='jabber:client'/>")); err != nil {
			return fmt.Errorf("presence: %w", err)
		}
		if err := c.write([]byte("<iq xmlns='jabber:client' type='get' id='avail' to='" + to + "'><ping xmlns='urn:xmpp:ping'/></iq>")); err != nil {
			return fmt.Errorf("presence: %w", err)
		}
		for {
			el, err := c.next()
			if err != nil {
				return fmt.Errorf("presence: %w", err)
			}
			// XEP-0198 §4: the server may ask for an acknowledgement
			// already (ejabberd does, and closes the stream when none
			// comes within its ack_timeout); h counts every stanza
			// received since <enable/>, these included.
			if el.NS == NSSM {
				if el.Name == "r" {
					if err := c.write(c.ack()); err != nil {
						return fmt.Errorf("sm: %w", err)
					}
				}
				continue
			}
			if c.sm && isStanza(el) {
				c.handled.Add(1)
			}
			if el.Name == "iq" && el.Attr("id") == "avail" {
				break
			}
			// Anything else (our presence reflected, a message sent to us
			// already) goes to Run's callback first.
			c.early = append(c.early, early{el, time.Now()})
		}
	}
	return nil
}

// ack is the answer to <r/> (XEP-0198 §4).
func (c *Conn) ack() []byte {
	return []byte("<a xmlns='urn:xmpp:sm:3' h='" + strconv.FormatUint(uint64(c.handled.Load()), 10) + "'/>")
}

type early struct {
	el *xmlstream.Element
	at time.Time
}

// isStanza says whether el is a stanza (RFC 6120 §8), which XEP-0198
// counts.
func isStanza(el *xmlstream.Element) bool {
	return el.Name == "message" || el.Name == "presence" || el.Name == "iq"
}

// open sends a stream header (or WebSocket <open/>) to the domain to,
// escaped for an attribute, and returns the features.
func (c *Conn) open(to string) (*xmlstream.Element, error) {
	var h string
	if c.ws {
		h = "<open xmlns='" + nsFraming + "' to='" + to + "' version='1.0'/>"
	} else {
		h = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + to + "' version='1.0'>"
	}
	if err := c.write([]byte(h)); err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	el, err := c.next()
	if err != nil {
		return nil, fmt.Errorf("stream features: %w", err)
	}
	if el.Name != "features" || el.NS != stanza.NSStream {
		return nil, fmt.Errorf("stream features: got %s", el.Name)
	}
	return el, nil
}

// next returns the next first-level element during negotiation.
func (c *Conn) next() (*xmlstream.Element, error) {
	for {
		ev, err := c.dec.Next()
		if err != nil {
			return nil, err
		}
		switch ev.Kind {
		case xmlstream.EventStreamClose:
			return nil, io.EOF
		case xmlstream.EventElement:
			if se, ok := stanza.ParseStreamError(ev.Element); ok {
				return nil, se
			}
			return ev.Element, nil
		}
	}
}

func (c *Conn) register(user, pass string) error {
	iq := "<iq xmlns='jabber:client' type='set' id='reg'><query xmlns='jabber:iq:register'><username>" +
		string(xmlstream.AppendEscapedText(nil, user)) + "</username><password>" +
		string(xmlstream.AppendEscapedText(nil, pass)) + "</password></query></iq>"
	if err := c.write([]byte(iq)); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	el, err := c.next()
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if el.Attr("type") == "result" {
		return nil
	}
	if cond := ErrorCondition(el); cond != "conflict" {
		return fmt.Errorf("register: %s", cond)
	}
	return nil
}

// chooseMechanism picks forced if offered, else the strongest SCRAM.
func chooseMechanism(feats *xmlstream.Element, forced string) (string, error) {
	var offered []string
	if m := feats.Child("mechanisms", stanza.NSSASL); m != nil {
		for e := range m.ChildrenNamed("mechanism", stanza.NSSASL) {
			offered = append(offered, strings.TrimSpace(e.Text()))
		}
	}
	if forced != "" {
		if !slices.Contains(offered, forced) {
			return "", fmt.Errorf("sasl: %s not offered (offered: %s)", forced, strings.Join(offered, " "))
		}
		return forced, nil
	}
	for _, m := range []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"} {
		if slices.Contains(offered, m) {
			return m, nil
		}
	}
	return "", fmt.Errorf("sasl: no SCRAM mechanism offered (offered: %s)", strings.Join(offered, " "))
}

func (c *Conn) authenticate(mech, user, pass string, keys *KeyCache) error {
	var s *scram
	var first []byte
	if mech == "PLAIN" {
		first = []byte("\x00" + user + "\x00" + pass)
	} else {
		var err error
		if s, err = newSCRAM(mech, user, pass, keys); err != nil {
			return err
		}
		first = s.start()
	}
	auth := "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + mech + "'>" + base64.StdEncoding.EncodeToString(first) + "</auth>"
	if err := c.write([]byte(auth)); err != nil {
		return fmt.Errorf("sasl: %w", err)
	}
	for {
		el, err := c.next()
		if err != nil {
			return fmt.Errorf("sasl: %w", err)
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text()))
		if err != nil {
			return fmt.Errorf("sasl %s: %w", el.Name, err)
		}
		switch el.Name {
		case "challenge":
			if s == nil {
				return errors.New("sasl: challenge to PLAIN")
			}
			resp, err := s.step(data)
			if err != nil {
				return err
			}
			if err := c.write([]byte("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString(resp) + "</response>")); err != nil {
				return fmt.Errorf("sasl: %w", err)
			}
		case "success":
			if s != nil {
				return s.verify(data)
			}
			return nil
		case "failure":
			cond := "failure"
			if f := el.FirstChild(); f != nil {
				cond = f.Name
			}
			return fmt.Errorf("sasl %s: %s", mech, cond)
		default:
			return fmt.Errorf("sasl: unexpected %s", el.Name)
		}
	}
}

// ErrorCondition returns the defined condition of a stanza error, for
// reports.
func ErrorCondition(el *xmlstream.Element) string {
	if e, ok := stanza.ParseError(el); ok {
		return string(e.Condition)
	}
	return "error of type " + el.Attr("type")
}

func (c *Conn) write(b []byte) error {
	_, err := c.conn.Write(b)
	return err
}

// Send writes one or more complete stanzas (one element for WebSocket).
// It is safe for concurrent use.
func (c *Conn) Send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := c.conn.Write(b)
	if err != nil {
		return fmt.Errorf("xmppc: send %s: %w", c.JID, err)
	}
	return nil
}

// IQ sends an IQ (without id: NextID gives one, which must be in b) and
// waits for its answer, which Run delivers. Run must be running.
func (c *Conn) IQ(ctx context.Context, id string, b []byte) (*xmlstream.Element, error) {
	ch := make(chan *xmlstream.Element, 1)
	c.iqMu.Lock()
	c.iqs[id] = ch
	c.iqMu.Unlock()
	defer func() {
		c.iqMu.Lock()
		delete(c.iqs, id)
		c.iqMu.Unlock()
	}()
	if err := c.Send(b); err != nil {
		return nil, err
	}
	select {
	case el := <-ch:
		return el, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("xmppc: iq %s: %w", id, ctx.Err())
	}
}

// NextID returns a fresh IQ id.
func (c *Conn) NextID() string { return "q" + strconv.FormatUint(c.iqSeq.Add(1), 10) }

// Run reads until the stream ends or the connection is closed, passing
// every first-level element and the time it was parsed to fn (answers
// to IQ are given to IQ's caller instead; stream management requests
// are answered). It returns nil after Close or the server's stream end.
func (c *Conn) Run(fn func(el *xmlstream.Element, at time.Time)) error {
	if c.relay {
		return c.runRelay(fn)
	}
	for _, e := range c.early {
		fn(e.el, e.at)
	}
	c.early = nil
	for {
		ev, err := c.dec.Next()
		if err != nil {
			if c.closed.Load() {
				return nil
			}
			return fmt.Errorf("xmppc: read %s: %w", c.JID, err)
		}
		at := time.Now()
		switch ev.Kind {
		case xmlstream.EventStreamClose:
			if c.closed.Load() {
				return nil
			}
			return fmt.Errorf("xmppc: %s: the server closed the stream", c.JID)
		case xmlstream.EventElement:
		default:
			continue
		}
		el := ev.Element
		switch {
		case el.NS == NSSM:
			if el.Name == "r" {
				c.Send(c.ack())
			}
			continue
		case el.NS == stanza.NSStream:
			if se, ok := stanza.ParseStreamError(el); ok {
				return fmt.Errorf("xmppc: %s: %w", c.JID, se)
			}
			continue
		}
		if isStanza(el) {
			c.handled.Add(1)
		}
		if el.Name == "iq" {
			if t := el.Attr("type"); t == "result" || t == "error" {
				c.iqMu.Lock()
				ch := c.iqs[el.Attr("id")]
				c.iqMu.Unlock()
				if ch != nil {
					ch <- el
					continue
				}
			}
		}
		fn(el, at)
	}
}

// Close ends the stream and the connection; Run then returns nil.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.wmu.Lock()
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	switch {
	case c.relay:
	case c.ws:
		c.conn.Write([]byte("<close xmlns='" + nsFraming + "'/>"))
	default:
		c.conn.Write([]byte("</stream:stream>"))
	}
	c.wmu.Unlock()
	return c.conn.Close()
}
