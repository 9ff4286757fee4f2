package story

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// XMPP over BOSH (XEP-0124, XEP-0206). As for WebSocket, the session is
// adapted to a net.Conn: what the streams write is queued and sent in
// <body/> wrappers by a goroutine that keeps one request held at the
// server; the responses, taken in rid order, are turned back into a
// stream. A stream header written becomes the session creation request
// or a restart (XEP-0206 §5), the stream's end a terminate request.

const (
	nsBOSH  = "http://jabber.org/protocol/httpbind"
	nsXBOSH = "urn:xmpp:xbosh"
	// boshOpenMark and boshCloseMark are what the codec writes for a
	// stream header and end; boshConn turns them into requests.
	boshOpenMark  = "<story-bosh-open to='"
	boshCloseMark = "<story-bosh-close/>"
	// boshWait is the 'wait' asked for: short, so that a request the
	// server holds does not outlive a test for long.
	boshWait = 20
)

var boshCodec = &codec{
	dial: dialBOSH,
	header: func(to, _ string) string {
		return boshOpenMark + string(xmlstream.AppendEscapedAttr(nil, to)) + "'/>"
	},
	footer: boshCloseMark,
	mode:   xmlstream.ModeStream,
	encode: func(el *xmlstream.Element) []byte { return el.AppendStandalone(nil) },
}

func dialBOSH(_ context.Context, url string, cfg *tls.Config) (net.Conn, error) {
	var id [8]byte
	rand.Read(id[:])
	ctx, cancel := context.WithCancel(context.Background())
	c := &boshConn{
		url: url,
		client: &http.Client{Transport: &http.Transport{
			TLSClientConfig:     cfg,
			MaxIdleConnsPerHost: 4,
			ForceAttemptHTTP2:   false,
		}},
		ctx: ctx, cancel: cancel,
		rid:       int64(binary.BigEndian.Uint32(id[:4])&0x7fffffff) + 1,
		requests:  1,
		headerAt:  map[int64]bool{},
		responses: map[int64]*xmlstream.Element{},
		wake:      make(chan struct{}, 1),
		kick:      make(chan struct{}, 1),
	}
	c.applyNext = c.rid
	go c.sender()
	return c, nil
}

// boshConn is a BOSH session seen as a connection.
type boshConn struct {
	url    string
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc

	mu          sync.Mutex
	sid         string
	to          string
	rid         int64 // of the next request
	requests    int   // how many may be outstanding
	outstanding int
	create      bool // a creation request is due
	restart     bool // a restart request is due
	terminate   bool // a terminate request is due
	ended       bool // the terminate request is sent
	queue       [][]byte
	headerAt    map[int64]bool // requests whose response opens a stream
	responses   map[int64]*xmlstream.Element
	applyNext   int64 // the rid whose response comes next in the stream
	authid      string
	from        string
	in          bytes.Buffer // the stream as read
	readErr     error        // after in is drained
	rdeadline   time.Time
	wake        chan struct{} // for the reader
	kick        chan struct{} // for the sender
	closed      bool
}

// sender sends a request whenever there is something to send and room
// for it, and keeps one request held so that the server can push.
func (c *boshConn) sender() {
	for {
		c.mu.Lock()
		if c.closed || c.readErr != nil || c.ended {
			c.mu.Unlock()
			return
		}
		var body []byte
		var rid int64
		switch {
		case c.create && c.outstanding == 0:
			c.create = false
			rid = c.takeRid()
			c.headerAt[rid] = true
			body = fmt.Appendf(nil, "<body xmlns='%s' xmlns:xmpp='%s' content='text/xml; charset=utf-8' hold='1' rid='%d' to='%s' ver='1.11' wait='%d' xml:lang='en' xmpp:version='1.0'/>",
				nsBOSH, nsXBOSH, rid, xmlstream.AppendEscapedAttr(nil, c.to), boshWait)
		case c.sid == "":
			// Nothing can be sent before the session exists.
		case c.outstanding < c.requests && (len(c.queue) > 0 || c.restart || c.terminate) || c.outstanding == 0 && !c.terminate:
			rid = c.takeRid()
			body = fmt.Appendf(nil, "<body xmlns='%s' rid='%d' sid='%s'", nsBOSH, rid, c.sid)
			if c.restart {
				c.restart = false
				c.headerAt[rid] = true
				body = fmt.Appendf(body, " xmlns:xmpp='%s' xmpp:restart='true' to='%s' xml:lang='en'", nsXBOSH, xmlstream.AppendEscapedAttr(nil, c.to))
			}
			if c.terminate && !c.headerAt[rid] {
				c.terminate, c.ended = false, true
				body = append(body, " type='terminate'"...)
			}
			body = append(body, '>')
			for _, p := range c.queue {
				body = append(body, p...)
			}
			c.queue = nil
			body = append(body, "</body>"...)
		}
		if body == nil {
			c.mu.Unlock()
			select {
			case <-c.kick:
			case <-c.ctx.Done():
				return
			}
			continue
		}
		c.outstanding++
		c.mu.Unlock()
		go c.post(rid, body)
	}
}

func (c *boshConn) takeRid() int64 {
	rid := c.rid
	c.rid++
	return rid
}

// post sends one request and files its response.
func (c *boshConn) post(rid int64, body []byte) {
	resp, err := c.roundTrip(body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outstanding--
	if err != nil {
		c.failLocked(fmt.Errorf("bosh: request %d: %w", rid, err))
		return
	}
	c.responses[rid] = resp
	for r := c.responses[c.applyNext]; r != nil; r = c.responses[c.applyNext] {
		delete(c.responses, c.applyNext)
		c.applyLocked(c.applyNext, r)
		c.applyNext++
	}
	signal(c.kick)
}

func (c *boshConn) roundTrip(body []byte) (*xmlstream.Element, error) {
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<22))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	el, err := xmlstream.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	if el.Name != "body" || el.NS != nsBOSH {
		return nil, fmt.Errorf("response is not a BOSH <body/>: %s", clip(string(data), 200))
	}
	return el, nil
}

// applyLocked adds a response to the stream read.
func (c *boshConn) applyLocked(rid int64, resp *xmlstream.Element) {
	if sid := resp.Attr("sid"); sid != "" && c.sid == "" {
		c.sid = sid
		c.authid = resp.Attr("authid")
		c.from = resp.Attr("from")
		if n, err := strconv.Atoi(resp.Attr("requests")); err == nil && n > 0 {
			c.requests = n
		}
	}
	if c.headerAt[rid] && c.sid != "" {
		delete(c.headerAt, rid)
		c.in.WriteString("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'")
		c.in.WriteString(" id='" + string(xmlstream.AppendEscapedAttr(nil, c.authid)) + "' from='" + string(xmlstream.AppendEscapedAttr(nil, c.from)) + "'>")
	}
	for el := range resp.Elements() {
		c.in.Write(el.AppendStandalone(nil))
	}
	if resp.Attr("type") == "terminate" {
		switch cond := resp.Attr("condition"); cond {
		case "", "remote-stream-error":
			c.in.WriteString("</stream:stream>")
			c.readErr = io.EOF
		default:
			c.readErr = fmt.Errorf("bosh: the server ended the session: %s", cond)
		}
		c.cancel()
	}
	signal(c.wake)
}

func (c *boshConn) failLocked(err error) {
	if c.readErr == nil {
		c.readErr = err
	}
	signal(c.wake)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *boshConn) Read(p []byte) (int, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		if c.in.Len() > 0 {
			n, _ := c.in.Read(p)
			c.mu.Unlock()
			return n, nil
		}
		if c.readErr != nil {
			err := c.readErr
			c.mu.Unlock()
			return 0, err
		}
		deadline := c.rdeadline
		c.mu.Unlock()
		var expired <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			expired = timer.C
		}
		select {
		case <-c.wake:
		case <-expired:
		}
	}
}

// Write queues p for the next request; a stream header or end becomes a
// request of its own kind.
func (c *boshConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.readErr != nil && c.readErr != io.EOF {
		return 0, c.readErr
	}
	switch {
	case bytes.HasPrefix(p, []byte(boshOpenMark)):
		el, err := xmlstream.Parse(p)
		if err != nil {
			return 0, err
		}
		c.to = el.Attr("to")
		if c.sid == "" && !c.create && len(c.headerAt) == 0 {
			c.create = true
		} else {
			c.restart = true
		}
	case string(p) == boshCloseMark:
		c.terminate = true
	default:
		c.queue = append(c.queue, bytes.Clone(p))
	}
	signal(c.kick)
	return len(p), nil
}

// Close drops the session without a word, like a lost connection.
func (c *boshConn) Close() error {
	c.mu.Lock()
	c.closed = true
	if c.readErr == nil || c.readErr == io.EOF {
		c.readErr = net.ErrClosed
	}
	c.mu.Unlock()
	c.cancel()
	c.client.CloseIdleConnections()
	signal(c.wake)
	return nil
}

type boshAddr string

func (a boshAddr) Network() string { return "bosh" }
func (a boshAddr) String() string  { return string(a) }

func (c *boshConn) LocalAddr() net.Addr  { return boshAddr("bosh-client") }
func (c *boshConn) RemoteAddr() net.Addr { return boshAddr(c.url) }
func (c *boshConn) SetDeadline(t time.Time) error {
	return c.SetReadDeadline(t)
}

func (c *boshConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdeadline = t
	c.mu.Unlock()
	signal(c.wake)
	return nil
}

// SetWriteDeadline has nothing to bound: writes only queue.
func (c *boshConn) SetWriteDeadline(time.Time) error { return nil }
