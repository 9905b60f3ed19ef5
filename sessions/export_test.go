package sessions

// NewForTest is New with the IDs taken from next instead of crypto/rand,
// and, if manual is set, no timer: nothing ends until Sweep (or a lookup
// that finds a session past its end) says so. Model tests use it so that a
// failing run replays exactly.
func NewForTest(cfg Config, next func() ID, manual bool) (*Manager, error) {
	return newManager(cfg, next, manual)
}
