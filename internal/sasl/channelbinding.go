package sasl

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// Channel binding types (RFC 5056 §2.1) supported by the -PLUS mechanisms.
const (
	// TLSExporter is tls-exporter (RFC 9266), offered on TLS 1.3 only.
	TLSExporter = "tls-exporter"
	// TLSServerEndPoint is tls-server-end-point (RFC 5929 §4), offered
	// when ConnInfo.Certificate is set and its signature algorithm
	// defines the hash to use.
	TLSServerEndPoint = "tls-server-end-point"
	// TLSUnique is tls-unique (RFC 5929 §3), the type RFC 5802 §6 makes
	// mandatory; it is undefined on TLS 1.3, and offered below only when
	// the handshake used the extended master secret (Go's TLSUnique is
	// empty otherwise), which closes the triple-handshake attack.
	TLSUnique = "tls-unique"
)

// exporterLabel and exporterSize define the tls-exporter channel binding
// (RFC 9266 §2): 32 bytes of exported keying material, empty context.
const (
	exporterLabel = "EXPORTER-Channel-Binding"
	exporterSize  = 32
)

// channelBindingTypes returns the channel binding types available on the
// connection, in order of preference.
func channelBindingTypes(ci *ConnInfo) []string {
	if !ci.bindable() {
		return nil
	}
	var types []string
	if ci.TLS.Version == tls.VersionTLS13 {
		types = append(types, TLSExporter)
	}
	if ci.Certificate != nil && endPointHash(ci.Certificate) != 0 {
		types = append(types, TLSServerEndPoint)
	}
	if ci.TLS.Version < tls.VersionTLS13 && len(ci.TLS.TLSUnique) > 0 {
		types = append(types, TLSUnique)
	}
	return types
}

// channelBindingData returns the channel binding data of type typ, which
// must be one of channelBindingTypes(ci).
func channelBindingData(ci *ConnInfo, typ string) ([]byte, error) {
	switch typ {
	case TLSExporter:
		// RFC 9266 §2; the context is absent, not empty.
		return ci.TLS.ExportKeyingMaterial(exporterLabel, nil, exporterSize)
	case TLSUnique:
		if len(ci.TLS.TLSUnique) == 0 {
			return nil, errors.New("tls-unique undefined on this connection")
		}
		return ci.TLS.TLSUnique, nil
	case TLSServerEndPoint:
		h := endPointHash(ci.Certificate)
		if h == 0 {
			return nil, errors.New("tls-server-end-point undefined for the certificate")
		}
		d := h.New()
		d.Write(ci.Certificate.Raw)
		return d.Sum(nil), nil
	}
	return nil, fmt.Errorf("unsupported channel binding type %q", typ)
}

// endPointHash returns the hash function of tls-server-end-point for the
// server's certificate (RFC 5929 §4.1): the hash of its signature
// algorithm, except that MD5 and SHA-1 are replaced by SHA-256. It returns
// 0 if the binding is undefined: for algorithms with no hash (Ed25519) or
// others.
func endPointHash(cert *x509.Certificate) crypto.Hash {
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.DSAWithSHA256, x509.ECDSAWithSHA256:
		return crypto.SHA256
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		return crypto.SHA384
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		return crypto.SHA512
	}
	return 0
}
