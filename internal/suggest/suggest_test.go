package suggest

import "testing"

func TestDidYouMean(t *testing.T) {
	known := []string{"listen", "nats", "channels", "condition"}
	for word, want := range map[string]string{
		"lisen":     ` (did you mean "listen"?)`,
		"chanels":   ` (did you mean "channels"?)`,
		"conditon":  ` (did you mean "condition"?)`,
		"listen":    "",
		"something": "",
		"x":         "",
	} {
		if got := DidYouMean(word, known); got != want {
			t.Errorf("%q: got %q, want %q", word, got, want)
		}
	}
}
