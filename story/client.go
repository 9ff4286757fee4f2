package story

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// DefaultTimeout bounds connecting, each Expect, and the wait for the
// server's close in Close, when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// NSSM is the namespace of Stream Management (XEP-0198 §2).
const NSSM = "urn:xmpp:sm:3"

// Options say how a client connects. The zero value is a client over TCP
// with STARTTLS, the strongest SCRAM mechanism offered, a server-generated
// resource, initial presence sent, no stream management, and a 5 s timeout.
type Options struct {
	// Transport to connect over; TCP when empty.
	Transport Transport
	// Mechanism forces a SASL mechanism (Plain, ScramSHA256Plus, …). Empty
	// picks the strongest offered: SCRAM-SHA-512, -256, -1, each -PLUS
	// variant first when the server offers it and a channel binding can be
	// computed, then PLAIN.
	Mechanism string
	// ChannelBinding forces the channel binding type of a -PLUS mechanism
	// (TLSExporter, TLSServerEndPoint, TLSUnique). Empty picks per XEP-0440
	// when the server advertises its types, else tls-exporter on TLS 1.3
	// and tls-server-end-point below.
	ChannelBinding string
	// Resource to bind (RFC 6120 §7.6); empty lets the server generate one.
	Resource string
	// NoPresence skips the initial presence. By default the client sends
	// <presence/> after binding and waits for the server to reflect it
	// back (RFC 6121 §4.2.2), so that it is available when Connect returns.
	NoPresence bool
	// StreamManagement enables XEP-0198 after binding (§3). The client
	// then counts the stanzas it receives and answers the server's <r/>
	// with <a h='…'/> by itself; <r/> elements are not queued.
	StreamManagement bool
	// Resume asks for resumption when enabling stream management (§5);
	// the client's SMID is then the id to resume with.
	Resume bool
	// ResumeMax is the 'max' of <enable/>: the client's preferred
	// maximum resumption time, in seconds (§3); none when zero.
	ResumeMax int
	// SMCounterStart starts the count of handled stanzas there instead of
	// 0, against a server whose counters start there too, to test their
	// wrap-around at 2^32 (§4). Nonstandard: for tests only.
	SMCounterStart uint32
	// ResumeFrom resumes the session of an earlier client (whose
	// connection was cut, see Cut) instead of binding a new resource
	// (XEP-0198 §5): the new client continues its JID and its count of
	// handled stanzas, and gets again what that one had not handled.
	// Initial presence is not sent (the session has it).
	ResumeFrom *Client
	// Timeout bounds connecting (when the context has no deadline), is the
	// deadline of Expect, Collect and IQ, and bounds the wait for the
	// server's </stream:stream> in Close. DefaultTimeout when zero.
	Timeout time.Duration
	// TLS replaces the Server's TLS configuration (to pin a TLS version,
	// for instance).
	TLS *tls.Config
	// MinSCRAMIterations is the lowest PBKDF2 iteration count accepted
	// from the server (RFC 5802 §5.1); 4096 when zero.
	MinSCRAMIterations int
	// Name labels the client in failure messages ("alice", "bob2"); the
	// full JID when empty.
	Name string
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

func (o Options) transport() Transport {
	if o.Transport == "" {
		return TCP
	}
	return o.Transport
}

// tlsConfigFor returns the client TLS configuration for srv.
func tlsConfigFor(srv Server, o Options) *tls.Config {
	cfg := o.TLS
	if cfg == nil {
		cfg = srv.TLSConfig()
	}
	if cfg == nil {
		cfg = &tls.Config{InsecureSkipVerify: true}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = srv.Domain()
	}
	return cfg
}

// Account is a user account on a Server.
type Account struct {
	Localpart string
	Password  string
	JID       jid.JID // bare JID
}

// Received is an element with the time the reader parsed it.
type Received struct {
	El *xmlstream.Element
	At time.Time
	// SMCount is, with stream management on, the client's count of
	// handled stanzas ('h', XEP-0198 §4) once this element is counted: an
	// <a/> with h at least SMCount (modulo 2^32) acknowledged it. Zero for
	// elements that are not stanzas and without stream management.
	SMCount uint32
}

// Client is one authenticated XMPP session. A reader goroutine parses what
// the server sends and queues every first-level element with its receive
// time; the wait functions (WaitFor, Expect, …) take elements off the
// queue. Send and the wait functions may be used from several goroutines;
// the Expect family reports failures through the testing.TB the client was
// created with, and so must be called from the test's goroutine.
//
// The reader goroutine ends when the connection is closed: by Close, or by
// the server.
type Client struct {
	t      testing.TB
	opts   Options
	srv    Server
	acct   Account
	s      *stream
	jid    jid.JID
	name   string
	mech   string
	feats  *xmlstream.Element
	start  time.Time
	closed chan struct{} // closed when the reader goroutine has ended

	mu         sync.Mutex
	queue      []Received
	changed    chan struct{} // closed and replaced whenever the state below changes
	streamErr  *stanza.StreamError
	srvClosed  bool  // </stream:stream> received
	readErr    error // the reader's final error
	ended      bool  // the reader goroutine has stopped reading
	closing    bool  // Close was called
	footerSent bool  // our </stream:stream> was sent

	smOn      atomic.Bool
	smHandled atomic.Uint32 // XEP-0198 §4 "h": stanzas received since <enabled/>
	smID      string        // resumption id from <enabled/>
	smEnabled *xmlstream.Element
	ackMu     sync.Mutex // serializes <a/>s, so that smAcked is the last sent
	smAcked   uint32     // the 'h' of the last <a/> sent

	closeOnce sync.Once
	closeErr  error
}

// Connect opens an authenticated session for acct. t may be nil outside
// tests (the load generator): the Expect family then panics instead of
// failing a test. With a non-nil t the client is closed by t.Cleanup.
func Connect(ctx context.Context, t testing.TB, srv Server, acct Account, opts Options) (*Client, error) {
	c := &Client{
		t:       t,
		opts:    opts,
		srv:     srv,
		acct:    acct,
		name:    opts.Name,
		start:   time.Now(),
		changed: make(chan struct{}),
		closed:  make(chan struct{}),
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.timeout())
		defer cancel()
	}
	if err := c.negotiate(ctx); err != nil {
		if c.s != nil {
			c.s.close()
		}
		return nil, fmt.Errorf("story: connect %s: %w", acct.JID, err)
	}
	go c.readLoop()
	if t != nil {
		t.Cleanup(func() { c.Close() })
	}
	if !c.opts.NoPresence {
		if err := c.initialPresence(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("story: connect %s: %w", acct.JID, err)
		}
	}
	return c, nil
}

// negotiate runs the stream negotiation of RFC 6120 §4.3: TLS, SASL, a
// stream restart, resource binding, then the optional legacy session and
// stream management. Elements that arrive unbidden after binding are queued.
func (c *Client) negotiate(ctx context.Context) error {
	tr := c.opts.transport()
	cd, err := codecFor(tr)
	if err != nil {
		return err
	}
	addr, ok := c.srv.Addr(tr)
	if !ok {
		return fmt.Errorf("the server does not offer transport %s", tr)
	}
	cfg := tlsConfigFor(c.srv, c.opts)
	conn, err := cd.dial(ctx, addr, cfg)
	if err != nil {
		return fmt.Errorf("dial %s %s: %w", tr, addr, err)
	}
	c.s = newStream(cd, conn, false)
	release := c.s.bindContext(ctx)
	defer release()
	to := c.opts.timeout()

	_, features, err := c.s.open(c.srv.Domain(), "", to)
	if err != nil {
		return err
	}
	if cd.startTLS {
		if features.Child("starttls", stanza.NSTLS) == nil {
			return errors.New("the server does not offer STARTTLS")
		}
		if err := c.s.startTLS(ctx, cfg, to); err != nil {
			return err
		}
		if _, features, err = c.s.open(c.srv.Domain(), c.acct.JID.String(), to); err != nil {
			return err
		}
	}
	c.mech, err = authenticate(c.s, features, saslConfig{
		user: c.acct.Localpart, pass: c.acct.Password,
		mechanism: c.opts.Mechanism, channelBinding: c.opts.ChannelBinding,
		minIterations: c.opts.MinSCRAMIterations, timeout: to,
	})
	if err != nil {
		return err
	}
	if _, features, err = c.s.open(c.srv.Domain(), c.acct.JID.String(), to); err != nil {
		return err
	}
	c.feats = features
	if prev := c.opts.ResumeFrom; prev != nil {
		return c.resume(prev, to)
	}
	if features.Child("bind", stanza.NSBind) == nil {
		return errors.New("the server does not offer resource binding")
	}
	if err := c.bind(to); err != nil {
		return err
	}
	if c.name == "" {
		c.name = c.jid.String()
	}
	// RFC 3921 §3 session establishment, only when the server says it is
	// not optional (RFC 6121 Appendix E, draft-cridland-xmpp-session-01).
	if s := features.Child("session", stanza.NSSession); s != nil && s.Child("optional", stanza.NSSession) == nil {
		iq := IQSet(nil, xmlstream.NewElement("session", stanza.NSSession))
		if _, err := c.syncIQ(iq, to); err != nil {
			return fmt.Errorf("session: %w", err)
		}
	}
	if c.opts.StreamManagement {
		if features.Child("sm", NSSM) == nil {
			return errors.New("stream management requested but the server does not offer urn:xmpp:sm:3")
		}
		enable := xmlstream.NewElement("enable", NSSM)
		if c.opts.Resume {
			enable.SetAttr("resume", "true")
		}
		if c.opts.ResumeMax > 0 {
			enable.SetAttr("max", strconv.Itoa(c.opts.ResumeMax))
		}
		if err := c.s.writeElement(enable, to); err != nil {
			return fmt.Errorf("sm enable: %w", err)
		}
		el, err := c.syncWait(func(el *xmlstream.Element) bool {
			return el.NS == NSSM && (el.Name == "enabled" || el.Name == "failed")
		})
		if err != nil {
			return fmt.Errorf("sm enable: %w", err)
		}
		if el.Name == "failed" {
			return fmt.Errorf("sm enable: the server answered %s", brief(el))
		}
		c.smID = el.Attr("id")
		c.smEnabled = el
		c.smHandled.Store(c.opts.SMCounterStart)
		c.smAcked = c.opts.SMCounterStart
		c.smOn.Store(true)
	}
	return nil
}

// ResumeError is the <failed/> answer to a resumption.
type ResumeError struct{ Failed *xmlstream.Element }

func (e *ResumeError) Error() string { return "sm resume: the server answered " + brief(e.Failed) }

// resume resumes prev's session on this connection (XEP-0198 §5).
func (c *Client) resume(prev *Client, timeout time.Duration) error {
	if prev.smID == "" {
		return errors.New("sm resume: the earlier client has no resumption id")
	}
	handled := prev.SMHandled()
	r := xmlstream.NewElement("resume", NSSM).SetAttr("previd", prev.smID).
		SetAttr("h", strconv.FormatUint(uint64(handled), 10))
	if err := c.s.writeElement(r, timeout); err != nil {
		return fmt.Errorf("sm resume: %w", err)
	}
	el, err := c.syncWait(func(el *xmlstream.Element) bool {
		return el.NS == NSSM && (el.Name == "resumed" || el.Name == "failed")
	})
	if err != nil {
		return fmt.Errorf("sm resume: %w", err)
	}
	if el.Name == "failed" {
		return &ResumeError{Failed: el}
	}
	c.jid, c.smID, c.smEnabled = prev.jid, prev.smID, prev.smEnabled
	c.smHandled.Store(handled)
	c.smAcked = handled
	c.smOn.Store(true)
	c.opts.NoPresence = true
	if c.name == "" {
		c.name = c.jid.String()
	}
	return nil
}

// SMID is the resumption id the server gave (XEP-0198 §5).
func (c *Client) SMID() string { return c.smID }

// SMEnabledElement is the server's <enabled/> answer (XEP-0198 §3), nil
// without stream management; a resumed client has its predecessor's.
func (c *Client) SMEnabledElement() *xmlstream.Element { return c.smEnabled }

// Ack sends <a h='…'/> with the count of stanzas handled so far (XEP-0198
// §4: an ack may be sent at any time) and returns that count.
func (c *Client) Ack() (uint32, error) {
	if !c.smOn.Load() {
		return 0, errors.New("story: ack without stream management")
	}
	return c.sendAck()
}

func (c *Client) sendAck() (uint32, error) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	h := c.smHandled.Load()
	a := xmlstream.NewElement("a", NSSM).SetAttr("h", strconv.FormatUint(uint64(h), 10))
	if err := c.s.writeElement(a, c.opts.timeout()); err != nil {
		return h, fmt.Errorf("story: %s: ack: %w", c.name, err)
	}
	c.smAcked = h
	return h, nil
}

// SMAcked is the 'h' of the last <a/> the client sent, by itself in
// answer to the server's <r/> or by Ack (its start count before any):
// the received stanzas whose Received.SMCount is at most SMAcked are
// acknowledged.
func (c *Client) SMAcked() uint32 {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	return c.smAcked
}

// Cut closes the connection abruptly, as a phone losing its network does:
// no </stream:stream>, no TLS close_notify, no WebSocket close frame —
// the TCP connection under them is closed. The server sees the connection
// fail. Over BOSH, where there is no connection to close, the client stops
// making requests (no terminate request): the server notices when the
// session goes silent (XEP-0124 §10, inactivity). The client is then
// closed.
func (c *Client) Cut() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.footerSent = true
		c.notifyLocked()
		c.mu.Unlock()
		c.s.abort()
		<-c.closed
	})
}

// bind binds a resource (RFC 6120 §7.5–7.7).
func (c *Client) bind(timeout time.Duration) error {
	b := xmlstream.NewElement("bind", stanza.NSBind)
	if c.opts.Resource != "" {
		b.AddChild(xmlstream.NewElement("resource", stanza.NSBind).AddText(c.opts.Resource))
	}
	res, err := c.syncIQ(IQSet(nil, b), timeout)
	if err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	rb := res.Child("bind", stanza.NSBind)
	if rb == nil {
		return fmt.Errorf("bind: result without <bind/>: %s", brief(res))
	}
	j, err := jid.Parse(strings.TrimSpace(rb.ChildText("jid", stanza.NSBind)))
	if err != nil {
		return fmt.Errorf("bind: the server returned a bad JID: %w", err)
	}
	c.jid = j
	return nil
}

// syncIQ sends iq and reads until its result, during negotiation; an
// error reply is returned as its *stanza.Error.
func (c *Client) syncIQ(iq *xmlstream.Element, timeout time.Duration) (*xmlstream.Element, error) {
	id := iq.Attr("id")
	if err := c.s.writeElement(iq, timeout); err != nil {
		return nil, err
	}
	res, err := c.syncWait(func(el *xmlstream.Element) bool {
		return el.Name == "iq" && el.NS == stanza.NSClient && el.Attr("id") == id &&
			(el.Attr("type") == "result" || el.Attr("type") == "error")
	})
	if err != nil {
		return nil, err
	}
	if res.Attr("type") == "error" {
		if se, ok := stanza.ParseError(res); ok {
			return res, se
		}
		return res, fmt.Errorf("error reply %s", brief(res))
	}
	return res, nil
}

// syncWait reads elements on the negotiating goroutine until one matches,
// queuing the others.
func (c *Client) syncWait(match func(*xmlstream.Element) bool) (*xmlstream.Element, error) {
	for {
		el, err := c.s.nextElement()
		if err != nil {
			return nil, err
		}
		if match(el) {
			return el, nil
		}
		c.received(el, time.Now())
	}
}

// initialPresence sends available presence and waits for its reflection.
func (c *Client) initialPresence(ctx context.Context) error {
	if err := c.TrySend(xmlstream.NewElement("presence", stanza.NSClient)); err != nil {
		return fmt.Errorf("initial presence: %w", err)
	}
	if _, _, err := c.WaitForTimed(ctx, IsPresence("", c.jid)); err != nil {
		return fmt.Errorf("initial presence: waiting for the server to reflect it: %w", err)
	}
	return nil
}

// readLoop is the reader goroutine. It ends when reading fails, which
// happens when the connection is closed by Close or by the server.
func (c *Client) readLoop() {
	defer close(c.closed)
	for {
		ev, err := c.s.next()
		if err != nil {
			c.mu.Lock()
			c.ended, c.readErr = true, err
			c.notifyLocked()
			c.mu.Unlock()
			return
		}
		switch ev.Kind {
		case xmlstream.EventStreamClose:
			c.mu.Lock()
			c.srvClosed = true
			answer := !c.footerSent
			c.footerSent = true
			c.notifyLocked()
			c.mu.Unlock()
			if answer {
				// RFC 6120 §4.4: answer the server's closing tag with ours,
				// so that it need not wait before closing the connection.
				c.s.write([]byte(c.s.codec.footer), c.opts.timeout())
			}
		case xmlstream.EventElement:
			c.received(ev.Element, time.Now())
		}
	}
}

// received handles one element read at time at.
func (c *Client) received(el *xmlstream.Element, at time.Time) {
	var count uint32
	if c.smOn.Load() {
		if el.NS == NSSM && el.Name == "r" {
			// XEP-0198 §4: answer with the count of handled stanzas.
			c.sendAck()
			return
		}
		if stanza.KindOf(el, stanza.NSClient) != stanza.KindOther {
			count = c.smHandled.Add(1)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if se, ok := stanza.ParseStreamError(el); ok {
		c.streamErr = se
	}
	c.queue = append(c.queue, Received{El: el, At: at, SMCount: count})
	c.notifyLocked()
}

func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// JID is the full JID bound to the session.
func (c *Client) JID() jid.JID { return c.jid }

// Bare is the bare JID of the session's account.
func (c *Client) Bare() jid.JID { return c.jid.Bare() }

// String returns the full JID, so that a *Client is an Addr.
func (c *Client) String() string { return c.jid.String() }

// Name is the label used in failure messages.
func (c *Client) Name() string { return c.name }

// Account is the account the client logged in with.
func (c *Client) Account() Account { return c.acct }

// Mechanism is the SASL mechanism that authenticated the client.
func (c *Client) Mechanism() string { return c.mech }

// Features are the stream features offered after authentication.
func (c *Client) Features() *xmlstream.Element { return c.feats }

// ConnectionState is the TLS state of the connection.
func (c *Client) ConnectionState() tls.ConnectionState {
	if st := c.s.tlsState(); st != nil {
		return *st
	}
	return tls.ConnectionState{}
}

// SMEnabled reports whether stream management is on.
func (c *Client) SMEnabled() bool { return c.smOn.Load() }

// SMHandled is the number of stanzas received since stream management was
// enabled: the "h" the client reports (XEP-0198 §4).
func (c *Client) SMHandled() uint32 { return c.smHandled.Load() }

// TrySend writes el to the server.
func (c *Client) TrySend(el *xmlstream.Element) error {
	if err := c.s.writeElement(el, c.opts.timeout()); err != nil {
		return fmt.Errorf("story: %s: send: %w", c.name, err)
	}
	return nil
}

// TrySendRaw writes s to the server as it is.
func (c *Client) TrySendRaw(s string) error {
	if err := c.s.write([]byte(s), c.opts.timeout()); err != nil {
		return fmt.Errorf("story: %s: send: %w", c.name, err)
	}
	return nil
}

// Send writes el to the server and fails the test if it cannot.
func (c *Client) Send(el *xmlstream.Element) {
	c.helper()
	if err := c.TrySend(el); err != nil {
		c.fatalf("%v", err)
	}
}

// SendRaw writes s to the server as it is (for malformed input) and fails
// the test if it cannot.
func (c *Client) SendRaw(s string) {
	c.helper()
	if err := c.TrySendRaw(s); err != nil {
		c.fatalf("%v", err)
	}
}

// WaitFor returns the first element, queued or yet to arrive, that matches
// all of preds (any element without preds), and removes it from the queue;
// elements that do not match stay queued in order. It fails when ctx is
// done, and when the stream has ended: after a stream error the error
// wraps the *stanza.StreamError (unless preds match the <stream:error/>
// element itself, which is then returned like any other element).
func (c *Client) WaitFor(ctx context.Context, preds ...Predicate) (*xmlstream.Element, error) {
	el, _, err := c.WaitForTimed(ctx, preds...)
	return el, err
}

// WaitForTimed is WaitFor that also returns when the element was received
// (parsed by the reader).
func (c *Client) WaitForTimed(ctx context.Context, preds ...Predicate) (*xmlstream.Element, time.Time, error) {
	p := And(preds...)
	for {
		c.mu.Lock()
		for i, r := range c.queue {
			if p.Match(r.El) {
				c.queue = append(c.queue[:i:i], c.queue[i+1:]...)
				c.mu.Unlock()
				return r.El, r.At, nil
			}
		}
		if err := c.endedLocked(); err != nil {
			c.mu.Unlock()
			return nil, time.Time{}, err
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, time.Time{}, fmt.Errorf("story: %s: waiting for %s: %w", c.name, p.Desc, ctx.Err())
		}
	}
}

// endedLocked returns why nothing more can arrive, or nil.
func (c *Client) endedLocked() error {
	switch {
	case c.streamErr != nil:
		return fmt.Errorf("story: %s: the server sent %w", c.name, c.streamErr)
	case c.closing:
		return fmt.Errorf("story: %s: %w", c.name, ErrClientClosed)
	case c.srvClosed:
		return fmt.Errorf("story: %s: %w", c.name, ErrStreamClosed)
	case c.ended:
		return fmt.Errorf("story: %s: connection lost: %w", c.name, c.readErr)
	}
	return nil
}

// ErrClientClosed is returned by waits on a client after Close.
var ErrClientClosed = errors.New("story: client closed")

// Expect is WaitFor with the client's timeout; when nothing matches in
// time, or the stream ends, it fails the test with what was received
// instead.
func (c *Client) Expect(preds ...Predicate) *xmlstream.Element {
	c.helper()
	el, _ := c.ExpectTimed(preds...)
	return el
}

// ExpectTimed is Expect that also returns the receive time.
func (c *Client) ExpectTimed(preds ...Predicate) (*xmlstream.Element, time.Time) {
	c.helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.timeout())
	defer cancel()
	start := time.Now()
	el, at, err := c.WaitForTimed(ctx, preds...)
	if err != nil {
		c.fatalf("%s", c.failure(fmt.Sprintf("expected %s within %s (waiting from %s)", And(preds...).Desc, c.opts.timeout(), c.since(start)), err))
		return nil, time.Time{}
	}
	return el, at
}

// Collect takes the next n elements in arrival order, whatever they are;
// it fails the test if fewer arrive within the client's timeout.
func (c *Client) Collect(n int) []*xmlstream.Element {
	c.helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.timeout())
	defer cancel()
	start := time.Now()
	for {
		c.mu.Lock()
		if len(c.queue) >= n {
			out := make([]*xmlstream.Element, n)
			for i := range out {
				out[i] = c.queue[i].El
			}
			c.queue = append(c.queue[:0:0], c.queue[n:]...)
			c.mu.Unlock()
			return out
		}
		err := c.endedLocked()
		ch := c.changed
		c.mu.Unlock()
		if err == nil {
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		c.fatalf("%s", c.failure(fmt.Sprintf("expected %d elements within %s (waiting from %s)", n, c.opts.timeout(), c.since(start)), err))
		return nil
	}
}

// ExpectNothing waits d and fails the test if an element matching all of
// preds (any element without preds) is queued or arrives meanwhile. It
// returns early when the stream ends, since nothing can arrive then.
func (c *Client) ExpectNothing(d time.Duration, preds ...Predicate) {
	c.helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	p := And(preds...)
	el, at, err := c.WaitForTimed(ctx, p)
	if err == nil {
		c.fatalf("story: %s: expected nothing matching %s for %s, but received at %s:\n    %s",
			c.name, p.Desc, d, c.since(at), clip(serialize(el), maxShown))
	}
}

// IQ sends an IQ (giving it an id if it has none) and returns the result
// or error with the same id; it fails the test if none arrives in time.
func (c *Client) IQ(iq *xmlstream.Element) *xmlstream.Element {
	c.helper()
	id := ensureID(iq)
	c.Send(iq)
	return c.Expect(isIQReply(id))
}

// RequestIQ is IQ for code that handles errors itself: it returns the
// result or error reply, or why none came.
func (c *Client) RequestIQ(ctx context.Context, iq *xmlstream.Element) (*xmlstream.Element, error) {
	id := ensureID(iq)
	if err := c.TrySend(iq); err != nil {
		return nil, err
	}
	return c.WaitFor(ctx, isIQReply(id))
}

func ensureID(iq *xmlstream.Element) string {
	id := iq.Attr("id")
	if id == "" {
		id = NewID()
		iq.SetAttr("id", id)
	}
	return id
}

func isIQReply(id string) Predicate {
	return Predicate{
		Desc: fmt.Sprintf("an IQ result or error with id %q", id),
		Match: func(el *xmlstream.Element) bool {
			if el.Name != "iq" || el.NS != stanza.NSClient || el.Attr("id") != id {
				return false
			}
			t := el.Attr("type")
			return t == "result" || t == "error"
		},
	}
}

// Pending returns a copy of the queue: what was received and not taken.
func (c *Client) Pending() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Received(nil), c.queue...)
}

// Close ends the session politely: it sends </stream:stream>, waits (at
// most the client's timeout) for the server to close its stream too
// (RFC 6120 §4.4), then closes the connection and waits for the reader
// goroutine to end. Calling it again returns the first result.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		done := c.ended || c.srvClosed || c.streamErr != nil
		c.closing = true
		sendFooter := !c.footerSent
		c.footerSent = true
		c.notifyLocked()
		c.mu.Unlock()
		var err error
		if !done {
			if werr := c.s.write([]byte(c.s.codec.footer), c.opts.timeout()); werr == nil {
				err = c.awaitServerClose(c.opts.timeout())
			}
		} else if sendFooter {
			// Answer a server-side close, if the connection still takes it.
			c.s.write([]byte(c.s.codec.footer), 100*time.Millisecond)
		}
		if cerr := c.s.close(); cerr != nil && !isClosedConn(cerr) && err == nil {
			err = cerr
		}
		<-c.closed
		if err != nil {
			c.closeErr = fmt.Errorf("story: %s: close: %w", c.name, err)
		}
	})
	return c.closeErr
}

func (c *Client) awaitServerClose(d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		c.mu.Lock()
		done := c.srvClosed || c.ended
		ch := c.changed
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("the server did not close its stream within %s", d)
		}
	}
}

// helper marks the caller as a test helper.
func (c *Client) helper() {
	if c.t != nil {
		c.t.Helper()
	}
}

// fatalf fails the test, or panics without one.
func (c *Client) fatalf(format string, args ...any) {
	if c.t == nil {
		panic(fmt.Sprintf(format, args...))
	}
	c.t.Helper()
	c.t.Fatalf(format, args...)
}

// since renders a time relative to the start of Connect.
func (c *Client) since(at time.Time) string {
	return fmt.Sprintf("+%.3fs", at.Sub(c.start).Seconds())
}

// maxShown bounds the serialized size of one element in failure messages.
const maxShown = 2000

// maxListed bounds how many queued elements a failure message lists.
const maxListed = 50

// failure renders a failed wait: what was expected, why it stopped, and
// the whole queue, oldest first, each element on one line with its
// receive time relative to the start of Connect.
func (c *Client) failure(what string, cause error) string {
	c.mu.Lock()
	queue := append([]Received(nil), c.queue...)
	c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "story: %s (%s): %s", c.name, c.jid, what)
	switch {
	case cause == nil:
	case errors.Is(cause, context.DeadlineExceeded):
		b.WriteString(": timed out")
	default:
		fmt.Fprintf(&b, ": %v", cause)
	}
	b.WriteString("\n")
	if len(queue) == 0 {
		b.WriteString("  received instead: nothing (the queue is empty)")
		return b.String()
	}
	fmt.Fprintf(&b, "  received instead, %d element(s), oldest first:", len(queue))
	for i, r := range queue {
		if i == maxListed {
			fmt.Fprintf(&b, "\n  … and %d more", len(queue)-maxListed)
			break
		}
		fmt.Fprintf(&b, "\n  %2d. [%s] %s", i+1, c.since(r.At), clip(serialize(r.El), maxShown))
	}
	return b.String()
}

// serialize renders el as it was on the wire.
func serialize(el *xmlstream.Element) string {
	return string(el.AppendXML(nil, xmlstream.StreamScope(stanza.NSClient)))
}
