module github.com/sessionwheel/sessionwheel/redisstore

go 1.26.0

// The store is built and tested against the library of this repository.
replace github.com/sessionwheel/sessionwheel => ../

require (
	github.com/redis/rueidis v1.0.79
	github.com/sessionwheel/sessionwheel v0.0.0-00010101000000-000000000000
	go.uber.org/goleak v1.3.0
)

require golang.org/x/sys v0.48.0 // indirect
