package live

import "time"

// SetPingEvery shortens the ping/re-authentication period for a test.
func SetPingEvery(d time.Duration) (restore func()) {
	old := pingEvery
	pingEvery = d
	return func() { pingEvery = old }
}
