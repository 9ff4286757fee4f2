package c2s

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// XMPP over BOSH (XEP-0124, XEP-0206): the client's HTTP requests carry
// <body/> wrappers. The elements in them are the session's input; what
// the session writes goes out in the responses to requests the server
// holds until it has something to say or the request's wait runs out.
// The session machinery is the TCP one: a boshTransport is its connection.

// Namespaces of XEP-0124 and XEP-0206.
const (
	NSBOSH  = "http://jabber.org/protocol/httpbind"
	NSXBOSH = "urn:xmpp:xbosh"
)

// BOSHOptions configure the BOSH endpoint.
type BOSHOptions struct {
	// MaxWait bounds how long a request is held (the client's 'wait').
	MaxWait time.Duration
	// Inactivity is how long a session may have no request held before
	// it is over (XEP-0124 §10).
	Inactivity time.Duration
	// MaxPause bounds a pause the client asks for (XEP-0124 §10).
	MaxPause time.Duration
	// MaxHold bounds the requests held at once (the client's 'hold').
	MaxHold int
	// Origins allowed for cross-origin requests (CORS); "*" allows any.
	Origins []string
	// BehindTLSProxy treats plain-HTTP requests as encrypted.
	BehindTLSProxy bool
}

func (o *BOSHOptions) setDefaults() {
	if o.MaxWait <= 0 {
		o.MaxWait = 60 * time.Second
	}
	if o.Inactivity <= 0 {
		o.Inactivity = 60 * time.Second
	}
	if o.MaxPause <= 0 {
		o.MaxPause = 5 * time.Minute
	}
	if o.MaxHold <= 0 {
		o.MaxHold = 2
	}
}

// boshSessions is the table of BOSH sessions by sid, with the goroutine
// that ends the inactive ones.
type boshSessions struct {
	mu   sync.Mutex
	byID map[string]*boshTransport
	once sync.Once
}

// BOSHSessions returns the number of open BOSH sessions.
func (s *Server) BOSHSessions() int {
	s.bosh.mu.Lock()
	defer s.bosh.mu.Unlock()
	return len(s.bosh.byID)
}

// BOSHHandler serves XMPP over BOSH.
func (s *Server) BOSHHandler(opts BOSHOptions) http.Handler {
	opts.setDefaults()
	s.bosh.once.Do(func() {
		s.bosh.mu.Lock()
		s.bosh.byID = map[string]*boshTransport{}
		s.bosh.mu.Unlock()
		go s.boshJanitor()
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Browser-based clients (XEP-0124 §2, XEP-0206): cross-origin
		// requests are allowed from the configured origins.
		if origin := r.Header.Get("Origin"); origin != "" && (slices.Contains(opts.Origins, "*") || slices.Contains(opts.Origins, origin)) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			w.Header().Set("Access-Control-Max-Age", "86400")
			w.Header().Add("Vary", "Origin")
		}
		switch r.Method {
		case http.MethodOptions:
			return
		case http.MethodPost:
		default:
			w.Header().Set("Allow", "POST, OPTIONS")
			http.Error(w, "BOSH (XEP-0124) takes POST requests", http.StatusMethodNotAllowed)
			return
		}
		limit := s.cfg.Limits.MaxElementBytes + boshEnvelope
		data, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
		if err != nil {
			return
		}
		if len(data) > limit {
			// XEP-0124 §17.1: the request cannot be processed.
			writeBOSH(w, terminalBody("policy-violation"))
			return
		}
		body, err := parseBOSHBody(data, s.cfg.Limits)
		if err != nil {
			// XEP-0124 §17.1: a request that is not a valid <body/>.
			writeBOSH(w, terminalBody("bad-request"))
			return
		}
		if sid := body.Attr("sid"); sid != "" {
			s.bosh.mu.Lock()
			t := s.bosh.byID[sid]
			s.bosh.mu.Unlock()
			if t == nil {
				// §17.2: an unknown or expired session.
				writeBOSH(w, terminalBody("item-not-found"))
				return
			}
			t.request(w, body, len(data))
			return
		}
		s.boshCreate(w, r, body, opts)
	})
}

// boshEnvelope is the room allowed for the <body/> wrapper around the
// largest stanza.
const boshEnvelope = 4096

// parseBOSHBody parses a request with the stream's limits, one level
// deeper for the wrapper. Children in the httpbind namespace (clients
// that leave out xmlns='jabber:client') are taken as jabber:client, as
// XEP-0206 §2 intends.
func parseBOSHBody(data []byte, lim xmlstream.Limits) (*xmlstream.Element, error) {
	lim.MaxElementBytes += boshEnvelope
	lim.MaxDepth++
	p := xmlstream.NewParser(xmlstream.ModeFragments, lim)
	p.Feed(data)
	ev, err := p.Next()
	if err != nil {
		return nil, err
	}
	if rest, err := p.Next(); err != nil || rest.Kind != xmlstream.EventNone || ev.Kind != xmlstream.EventElement {
		return nil, errors.New("c2s: BOSH: the request must be one <body/>")
	}
	body := ev.Element
	if body.Name != "body" || body.NS != NSBOSH {
		return nil, errors.New("c2s: BOSH: the request is not a <body/>")
	}
	for el := range body.Elements() {
		retagNS(el, NSBOSH, stanza.NSClient)
	}
	return body, nil
}

func retagNS(el *xmlstream.Element, from, to string) {
	if el.NS == from {
		el.NS = to
		for c := range el.Elements() {
			retagNS(c, from, to)
		}
	}
}

func writeBOSH(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(b)
}

func terminalBody(condition string) []byte {
	return []byte("<body xmlns='" + NSBOSH + "' type='terminate' condition='" + condition + "'/>")
}

// boshCreate opens a session (XEP-0124 §7.1, XEP-0206 §3).
func (s *Server) boshCreate(w http.ResponseWriter, r *http.Request, body *xmlstream.Element, opts BOSHOptions) {
	rid, err := strconv.ParseInt(body.Attr("rid"), 10, 64)
	if err != nil || rid <= 0 || rid >= 1<<53 {
		writeBOSH(w, terminalBody("bad-request"))
		return
	}
	if !s.router.IsLocal(body.Attr("to")) {
		writeBOSH(w, terminalBody("host-unknown"))
		return
	}
	if body.Attr("type") == "terminate" {
		writeBOSH(w, terminalBody("bad-request"))
		return
	}
	wait := opts.MaxWait
	if v, err := strconv.Atoi(body.Attr("wait")); err == nil && v >= 0 {
		wait = min(time.Duration(v)*time.Second, opts.MaxWait)
	}
	hold := 1
	if v, err := strconv.Atoi(body.Attr("hold")); err == nil && v >= 0 {
		hold = min(v, opts.MaxHold)
	}
	t := &boshTransport{
		srv: s, sid: randomID() + randomID(), wait: wait, hold: hold,
		inactivity: opts.Inactivity, maxPause: opts.MaxPause,
		tls: r.TLS, proxy: opts.BehindTLSProxy, remote: r.RemoteAddr,
		lastRid: rid - 1, pending: map[int64]*boshRequest{}, responses: map[int64][]byte{},
		signal: make(chan struct{}, 1), lastActivity: time.Now(), creation: rid,
		shaper: shaper{rate: float64(s.cfg.RateBytesPerSecond), burst: float64(max(s.cfg.RateBytesPerSecond, s.cfg.Limits.MaxElementBytes))},
	}
	// The session creation request opens the stream (XEP-0206 §3).
	t.inbox = append(t.inbox, streamOpenEvent(body))
	s.bosh.mu.Lock()
	s.bosh.byID[t.sid] = t
	s.bosh.mu.Unlock()
	go s.serveSession(newSession(s, t))
	t.request(w, body, 0)
}

// streamOpenEvent is the stream header a creation or restart request
// stands for (XEP-0206 §3, §5).
func streamOpenEvent(body *xmlstream.Element) xmlstream.Event {
	open := xmlstream.NewElement("open", NSFraming).SetAttr("to", body.Attr("to")).SetAttr("version", "1.0")
	if v, ok := body.LookupAttr(NSXBOSH, "version"); ok {
		open.SetAttr("version", v)
	}
	if v := body.Attr("xml:lang"); v != "" {
		open.SetAttr("xml:lang", v)
	}
	return xmlstream.Event{Kind: xmlstream.EventStreamOpen, Element: open,
		Decls: []xmlstream.Attr{{Value: stanza.NSClient}}}
}

// boshJanitor ends the sessions whose client stopped making requests
// (XEP-0124 §10); it lives as long as the server.
func (s *Server) boshJanitor() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-tick.C:
			s.bosh.mu.Lock()
			var gone []*boshTransport
			for _, t := range s.bosh.byID {
				if t.inactive(now) {
					gone = append(gone, t)
				}
			}
			s.bosh.mu.Unlock()
			for _, t := range gone {
				t.close()
				t.forget()
			}
		}
	}
}

// boshTransport is one BOSH session seen as a connection.
type boshTransport struct {
	srv        *Server
	sid        string
	wait       time.Duration
	hold       int
	inactivity time.Duration
	maxPause   time.Duration
	tls        *tls.ConnectionState
	proxy      bool
	remote     string
	creation   int64 // rid of the session creation request

	shapeMu sync.Mutex
	shaper  shaper

	mu           sync.Mutex
	inbox        []xmlstream.Event // input for the session's reader
	signal       chan struct{}     // input or a closing for the reader
	deadline     time.Time         // set by interrupt
	lastRid      int64             // the last request processed, in rid order
	pending      map[int64]*boshRequest
	waiting      []*boshRequest // held, oldest first
	out          [][]byte       // queued for the client
	outBytes     int
	authid       string // the stream id, for the creation response
	from         string
	streamError  bool         // a stream error is queued
	terminated   bool         // the stream is over
	terminateReq *boshRequest // the client's terminate request, held for the end
	condition    string       // why, when it is not the client's doing
	responses    map[int64][]byte
	lastActivity time.Time // of the last request or response
	pauseUntil   time.Time
	closed       bool
}

type boshRequest struct {
	rid   int64
	body  *xmlstream.Element
	reply chan []byte // the response, once
}

var _ transport = (*boshTransport)(nil)

func (t *boshTransport) handshake(context.Context, time.Time) error { return nil }

// request handles one HTTP request: its payload goes to the session in
// rid order (XEP-0124 §14.2), then the request waits for output.
func (t *boshTransport) request(w http.ResponseWriter, body *xmlstream.Element, size int) {
	t.shapeMu.Lock()
	t.shaper.take(size)
	t.shapeMu.Unlock()
	rid, err := strconv.ParseInt(body.Attr("rid"), 10, 64)
	req := &boshRequest{rid: rid, body: body, reply: make(chan []byte, 1)}
	t.mu.Lock()
	switch {
	case t.closed:
		// The session is over; the request gets what was left to say.
		resp := t.responseLocked(req)
		t.mu.Unlock()
		t.forget()
		writeBOSH(w, resp)
		return
	case err != nil:
		t.mu.Unlock()
		writeBOSH(w, terminalBody("bad-request"))
		t.close()
		return
	case rid <= t.lastRid:
		// §14.3: a request sent again after a broken connection gets
		// the same response, or takes the place of the first one if
		// that is still held.
		if resp, ok := t.responses[rid]; ok {
			t.mu.Unlock()
			writeBOSH(w, resp)
			return
		}
		i := slices.IndexFunc(t.waiting, func(h *boshRequest) bool { return h.rid == rid })
		if i < 0 {
			t.mu.Unlock()
			writeBOSH(w, terminalBody("item-not-found"))
			t.close()
			return
		}
		t.waiting[i].reply <- emptyBody
		t.waiting[i] = req
	case t.pending[rid] != nil:
		// The same request again, before its turn came.
		t.pending[rid].reply <- emptyBody
		t.pending[rid] = req
	case rid > t.lastRid+int64(t.hold)+1:
		// §14.2: outside the window of requests.
		t.mu.Unlock()
		writeBOSH(w, terminalBody("item-not-found"))
		t.close()
		return
	default:
		t.pending[rid] = req
		t.lastActivity = time.Now()
		for next := t.pending[t.lastRid+1]; next != nil; next = t.pending[t.lastRid+1] {
			delete(t.pending, next.rid)
			t.lastRid = next.rid
			t.acceptLocked(next)
		}
	}
	t.mu.Unlock()

	var resp []byte
	timer := time.NewTimer(t.wait)
	select {
	case resp = <-req.reply:
	case <-timer.C:
		t.mu.Lock()
		if i := slices.Index(t.waiting, req); i >= 0 {
			// §11: 'wait' is over; an empty response.
			t.waiting = slices.Delete(t.waiting, i, i+1)
			resp = t.responseLocked(req)
		}
		t.mu.Unlock()
		if resp == nil {
			// Answered meanwhile, or not yet processed: waiting for an
			// earlier rid, which comes or ends the session.
			resp = <-req.reply
		}
	}
	timer.Stop()
	writeBOSH(w, resp)
}

var emptyBody = []byte("<body xmlns='" + NSBOSH + "'/>")

// acceptLocked processes a request in rid order: its elements become
// input, restart and terminate become stream events (XEP-0206 §5;
// XEP-0124 §13), and the request joins those held for output.
func (t *boshTransport) acceptLocked(req *boshRequest) {
	b := req.body
	if v, _ := b.LookupAttr(NSXBOSH, "restart"); v == "true" || v == "1" {
		t.inbox = append(t.inbox, streamOpenEvent(b))
	}
	for el := range b.Elements() {
		t.inbox = append(t.inbox, xmlstream.Event{Kind: xmlstream.EventElement, Element: el})
	}
	if b.Attr("type") == "terminate" {
		t.inbox = append(t.inbox, xmlstream.Event{Kind: xmlstream.EventStreamClose})
		t.terminateReq = req
	}
	if len(t.inbox) > 0 {
		select {
		case t.signal <- struct{}{}:
		default:
		}
	}
	t.waiting = append(t.waiting, req)
	if p, err := strconv.Atoi(b.Attr("pause")); err == nil && p > 0 {
		// §10: a pause answers every held request, itself included.
		t.pauseUntil = time.Now().Add(min(time.Duration(p)*time.Second, t.maxPause))
		t.answerLocked(len(t.waiting))
		return
	}
	t.pauseUntil = time.Time{}
	// §11: no more than 'hold' requests are kept, the oldest go back;
	// a polling session (hold 0) is answered at once, but for the
	// creation request which waits for the stream features.
	if n := len(t.waiting) - t.hold; n > 0 && !(t.hold == 0 && req.rid == t.creation) {
		t.answerLocked(n)
	}
	if len(t.out) > 0 || t.terminated {
		t.answerLocked(1)
	}
}

// answerLocked answers the n oldest held requests.
func (t *boshTransport) answerLocked(n int) {
	for ; n > 0 && len(t.waiting) > 0; n-- {
		w := t.waiting[0]
		if w == t.terminateReq && !t.terminated {
			// §12: the client's terminate request gets the terminate
			// response, with whatever comes until the stream ends.
			return
		}
		t.waiting = t.waiting[1:]
		w.reply <- t.responseLocked(w)
	}
}

// responseLocked builds the response to req with what is queued, and
// keeps it for retransmission (§14.3).
func (t *boshTransport) responseLocked(req *boshRequest) []byte {
	var b bytes.Buffer
	b.WriteString("<body xmlns='" + NSBOSH + "'")
	if req.rid == t.creation {
		// §7.1, XEP-0206 §3: the session creation response.
		b.WriteString(" xmlns:xmpp='" + NSXBOSH + "' xmlns:stream='http://etherx.jabber.org/streams' sid='" + t.sid + "'")
		b.WriteString(" wait='" + strconv.Itoa(int(t.wait/time.Second)) + "' requests='" + strconv.Itoa(t.hold+1) + "'")
		b.WriteString(" hold='" + strconv.Itoa(t.hold) + "' inactivity='" + strconv.Itoa(int(t.inactivity/time.Second)) + "'")
		b.WriteString(" maxpause='" + strconv.Itoa(int(t.maxPause/time.Second)) + "' polling='1' ver='1.11' xmpp:version='1.0' xmpp:restartlogic='true'")
		if t.authid != "" {
			b.WriteString(" authid='" + t.authid + "'")
		}
		if t.from != "" {
			b.WriteString(" from='")
			b.Write(xmlstream.AppendEscapedAttr(nil, t.from))
			b.WriteString("'")
		}
	}
	if t.terminated {
		// The end of the stream ends the session; a stream error travels
		// in a remote-stream-error response (XEP-0206 §6).
		b.WriteString(" type='terminate'")
		if t.streamError {
			b.WriteString(" condition='remote-stream-error'")
		} else if t.condition != "" {
			b.WriteString(" condition='" + t.condition + "'")
		}
	}
	if len(t.out) == 0 {
		b.WriteString("/>")
	} else {
		b.WriteString(">")
		for _, f := range t.out {
			b.Write(f)
		}
		b.WriteString("</body>")
		t.out, t.outBytes = nil, 0
	}
	resp := b.Bytes()
	t.responses[req.rid] = resp
	for rid := range t.responses {
		if rid < t.lastRid-int64(t.hold)-1 {
			delete(t.responses, rid)
		}
	}
	t.lastActivity = time.Now()
	return resp
}

// inactive reports whether the session should end: no request held and
// none for longer than the inactivity period or the pause.
func (t *boshTransport) inactive(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.waiting) > 0 {
		return false
	}
	limit := t.lastActivity.Add(t.inactivity)
	if t.pauseUntil.After(limit) {
		limit = t.pauseUntil
	}
	return now.After(limit)
}

// timeoutError is what next returns when its deadline passes.
type timeoutError struct{}

func (timeoutError) Error() string   { return "c2s: BOSH: read timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func (t *boshTransport) next(deadline time.Time) (xmlstream.Event, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		t.mu.Lock()
		if len(t.inbox) > 0 {
			ev := t.inbox[0]
			t.inbox[0] = xmlstream.Event{}
			t.inbox = t.inbox[1:]
			t.mu.Unlock()
			return ev, nil
		}
		if t.closed || t.terminated {
			// After the server's closing tag the client has no stream
			// to close: there is nothing to wait for (XEP-0124 §13).
			t.mu.Unlock()
			return xmlstream.Event{}, io.EOF
		}
		if !t.deadline.IsZero() && (deadline.IsZero() || t.deadline.Before(deadline)) {
			deadline = t.deadline
		}
		t.mu.Unlock()
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return xmlstream.Event{}, timeoutError{}
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			timeout = timer.C
		}
		select {
		case <-t.signal:
		case <-timeout:
			return xmlstream.Event{}, timeoutError{}
		}
	}
}

func (t *boshTransport) restart() {}

func (t *boshTransport) appendOpen(dst []byte, id, from, _ string) []byte {
	// The stream header is the creation response's attributes.
	t.mu.Lock()
	t.authid, t.from = id, from
	t.mu.Unlock()
	return dst
}

func (t *boshTransport) appendElement(dst []byte, el *xmlstream.Element) []byte {
	if el.Name == "error" && el.NS == stanza.NSStream {
		t.mu.Lock()
		t.streamError = true
		t.mu.Unlock()
	}
	return el.AppendStandalone(dst)
}

// boshClose stands for the end of the stream in the output.
const boshClose = "</stream:stream>"

func (t *boshTransport) appendClose(dst []byte) []byte { return append(dst, boshClose...) }

func (t *boshTransport) framed() bool { return true }

// write queues what the session wrote and answers a held request.
func (t *boshTransport) write(data []byte, ends []int, _ time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return io.ErrClosedPipe
	}
	start := 0
	for _, end := range ends {
		f := data[start:end]
		start = end
		switch {
		case len(f) == 0:
		case string(f) == boshClose:
			t.terminated = true
		default:
			t.out = append(t.out, slices.Clone(f))
			t.outBytes += len(f)
		}
	}
	if t.outBytes > t.srv.cfg.MaxOutboundBytes {
		// The client does not come for its data.
		return errors.New("c2s: BOSH: too much data queued for the client")
	}
	if len(t.out) > 0 || t.terminated {
		t.answerLocked(1)
	}
	return nil
}

func (t *boshTransport) interrupt(at time.Time) {
	t.mu.Lock()
	t.deadline = at
	t.mu.Unlock()
	select {
	case t.signal <- struct{}{}:
	default:
	}
}

// close ends the session: held requests get the terminate response,
// requests waiting for their turn an item-not-found.
func (t *boshTransport) close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	if !t.terminated {
		t.terminated = true
		if t.condition == "" {
			t.condition = "remote-connection-failed"
		}
	}
	t.answerLocked(len(t.waiting))
	for rid, p := range t.pending {
		p.reply <- terminalBody("item-not-found")
		delete(t.pending, rid)
	}
	// What the session said last (a stream error) waits for the next
	// request, or for the janitor.
	keep := len(t.out) > 0
	t.mu.Unlock()
	if !keep {
		t.forget()
	}
	select {
	case t.signal <- struct{}{}:
	default:
	}
	return nil
}

// forget removes the session from the table: its sid is unknown from now.
func (t *boshTransport) forget() {
	t.srv.bosh.mu.Lock()
	if t.srv.bosh.byID[t.sid] == t {
		delete(t.srv.bosh.byID, t.sid)
	}
	t.srv.bosh.mu.Unlock()
}

func (t *boshTransport) secure() bool { return t.tls != nil || t.proxy }

// tlsState is nil: the requests of a BOSH session may come over several
// HTTP connections, so there is no one TLS channel to bind SASL to
// (RFC 9266) and the -PLUS mechanisms are not offered.
func (t *boshTransport) tlsState() *tls.ConnectionState { return nil }
func (t *boshTransport) canStartTLS() bool              { return false }
func (t *boshTransport) startTLS(context.Context, *tls.Config, time.Time) error {
	return errors.New("c2s: no STARTTLS over BOSH")
}
func (t *boshTransport) remoteAddr() string { return t.remote }
