package story

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"os/exec"
	"strings"
)

// Server is the deployment a story runs against. Meerkat's test server
// implements it in-process; External covers any server reachable over the
// network whose users can be created by some command or API.
//
// Implementations must be safe for concurrent use: stories run in parallel.
type Server interface {
	// Domain is the XMPP domain users are created in ("localhost").
	Domain() string
	// Addr returns the address to dial for transport t (host:port for TCP
	// and DirectTLS); ok is false if the server does not offer t.
	Addr(t Transport) (addr string, ok bool)
	// TLSConfig returns the client TLS configuration to use: test servers
	// use self-signed certificates, so it typically trusts exactly the
	// server's certificate (or skips verification). The package clones it
	// and sets ServerName to Domain when it is empty.
	TLSConfig() *tls.Config
	// CreateUser creates the account localpart@Domain with password.
	CreateUser(ctx context.Context, localpart, password string) error
	// RemoveUser deletes the account and everything stored for it. Removing
	// an account that does not exist is not an error.
	RemoveUser(ctx context.Context, localpart string) error
}

// External is a Server reached over the network, such as a Prosody or an
// ejabberd started by scripts/peers, or your own deployment.
type External struct {
	// DomainName is the XMPP domain.
	DomainName string
	// Addrs maps each transport offered to its address.
	Addrs map[Transport]string
	// TLS is the client TLS configuration; nil means "do not verify the
	// certificate" (test servers' certificates are self-signed).
	TLS *tls.Config
	// Create and Remove manage accounts (see Server).
	Create func(ctx context.Context, localpart, password string) error
	Remove func(ctx context.Context, localpart string) error
}

var _ Server = (*External)(nil)

// Domain implements Server.
func (e *External) Domain() string { return e.DomainName }

// Addr implements Server.
func (e *External) Addr(t Transport) (string, bool) {
	a, ok := e.Addrs[t]
	return a, ok && a != ""
}

// TLSConfig implements Server.
func (e *External) TLSConfig() *tls.Config {
	if e.TLS != nil {
		return e.TLS
	}
	return &tls.Config{InsecureSkipVerify: true, ServerName: e.DomainName}
}

// CreateUser implements Server.
func (e *External) CreateUser(ctx context.Context, localpart, password string) error {
	if e.Create == nil {
		return fmt.Errorf("story: server %s: no way to create users", e.DomainName)
	}
	return e.Create(ctx, localpart, password)
}

// RemoveUser implements Server.
func (e *External) RemoveUser(ctx context.Context, localpart string) error {
	if e.Remove == nil {
		return fmt.Errorf("story: server %s: no way to remove users", e.DomainName)
	}
	return e.Remove(ctx, localpart)
}

// Prosody returns an External whose users are managed with prosodyctl:
//
//	<command...> register <localpart> <domain> <password>
//	<command...> deluser <localpart>@<domain>
//
// command is the prosodyctl invocation, by default just "prosodyctl"; pass
// e.g. "prosodyctl", "--config", "/path/prosody.cfg.lua" for a private
// instance, or prefix it with "sudo", "-u", "prosody".
func Prosody(domain string, addrs map[Transport]string, command ...string) *External {
	if len(command) == 0 {
		command = []string{"prosodyctl"}
	}
	command = append([]string(nil), command...)
	return &External{
		DomainName: domain,
		Addrs:      addrs,
		Create: func(ctx context.Context, local, password string) error {
			return runCommand(ctx, command, "register", local, domain, password)
		},
		Remove: func(ctx context.Context, local string) error {
			err := runCommand(ctx, command, "deluser", local+"@"+domain)
			if err != nil && strings.Contains(err.Error(), "does not exist") {
				return nil
			}
			return err
		},
	}
}

// Ejabberd returns an External whose users are managed with ejabberdctl:
//
//	<command...> register <localpart> <domain> <password>
//	<command...> unregister <localpart> <domain>
//
// command is the ejabberdctl invocation, by default just "ejabberdctl";
// pass e.g. "ejabberdctl", "--config-dir", dir, "--ctl-config",
// dir+"/ejabberdctl.cfg" for a private node.
func Ejabberd(domain string, addrs map[Transport]string, command ...string) *External {
	if len(command) == 0 {
		command = []string{"ejabberdctl"}
	}
	command = append([]string(nil), command...)
	return &External{
		DomainName: domain,
		Addrs:      addrs,
		Create: func(ctx context.Context, local, password string) error {
			return runCommand(ctx, command, "register", local, domain, password)
		},
		Remove: func(ctx context.Context, local string) error {
			return runCommand(ctx, command, "unregister", local, domain)
		},
	}
}

// runCommand runs command with args appended; a failure carries its output.
// The password is among args, so the error names only the subcommand.
func runCommand(ctx context.Context, command []string, args ...string) error {
	argv := append(append([]string(nil), command[1:]...), args...)
	cmd := exec.CommandContext(ctx, command[0], argv...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("story: %s %s %s: %w: %s", command[0], args[0], args[1], err, strings.TrimSpace(out.String()))
	}
	return nil
}
