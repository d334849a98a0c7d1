//go:build tools

// The reference age CLI, for the encryption interop tests only (test/integration/encryption-interop.test.ts).
package tools

import (
	_ "filippo.io/age/cmd/age"
	_ "filippo.io/age/cmd/age-keygen"
)
