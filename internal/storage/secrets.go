package storage

import "context"

// SecretStore keeps server-wide secrets that every node of a deployment
// must share, such as the key that makes archive IDs unpredictable.
type SecretStore interface {
	// Secret returns the secret called name, creating it from size random
	// bytes the first time; every caller gets the same bytes after that.
	Secret(ctx context.Context, name string, size int) ([]byte, error)
}
