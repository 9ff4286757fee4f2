// Package sasl is the server side of SASL authentication for XMPP streams
// (RFC 6120 §6).
//
// Mechanisms:
//
//   - SCRAM-SHA-1, SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677),
//     and their -PLUS variants with channel binding (RFC 5802 §6, RFC 5056):
//     tls-exporter (RFC 9266, TLS 1.3 only) and tls-server-end-point
//     (RFC 5929 §4, a hash of the server's own leaf certificate). The
//     channel binding types available on a connection are advertised with
//     XEP-0440 (NSChannelBinding).
//   - PLAIN (RFC 4616), offered only on TLS-protected streams.
//
// The server keeps no passwords: an account is stored as Credentials, the
// SCRAM secrets of RFC 5802 §3 (salt, iteration count, StoredKey and
// ServerKey) for each hash function. A SCRAM login therefore never runs
// PBKDF2 on the server: it costs a handful of HMACs. PLAIN runs PBKDF2 once
// with the stored salt and iteration count and compares the resulting
// StoredKey in constant time.
//
// The XMPP layer owns the XML and the base64 (RFC 6120 §6.3.5, §6.4): it
// passes the mechanism name of <auth/> to Server.Start, the decoded initial
// response and each decoded <response/> to Conversation.Step, and sends what
// Step returns as <challenge/>, or as the additional data of <success/> once
// Step reports done. Every error returned by Start and Step is a *Failure
// carrying the RFC 6120 §6.5 condition to put in <failure/>. Bad base64
// (IncorrectEncoding) and <abort/> (Aborted) are the XMPP layer's to report.
//
// Identities: the SCRAM and PLAIN authentication identity is the simple user
// name of RFC 6120 §6.3.7, the localpart of the user's JID. It is normalized
// exactly like a JID localpart (RFC 7622 §3.3, the PRECIS
// UsernameCaseMapped profile, via package jid), so "Juliet" logs in as
// "juliet". An authorization identity is accepted only if it is the
// authenticating user's own bare JID (RFC 6120 §6.3.8); anything else fails
// with InvalidAuthzID.
//
// Passwords are prepared with the PRECIS OpaqueString profile (RFC 8265
// §4.2), the successor of SASLprep (RFC 4013) required for XMPP passwords by
// RFC 7622 §3.1 — when credentials are made (NewCredentials) and when a
// PLAIN password is checked. With SCRAM the client prepares the password;
// clients that still apply SASLprep agree with OpaqueString on every
// password except those containing compatibility characters (SASLprep
// applies NFKC, OpaqueString NFC).
//
// Unknown accounts are not revealed: an unknown user and a wrong password
// both fail with NotAuthorized, at the same step and for the same work (for
// PLAIN, the work of an account with DefaultIterations). For an unknown user
// the exchange goes on with fake credentials whose salt is derived from the
// user name with a per-Server random key, so that repeated attempts see a
// stable salt, as for a real account.
package sasl
