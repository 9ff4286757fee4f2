package load

// login: every user connects, authenticates and binds (the runner's
// login phase is the storm), then stays online and idle for Duration.
// With the server's pid, the server's RSS is sampled before the first
// connection and once the sessions have settled: memory per session.
func init() {
	Register(Scenario{
		Name: "login",
		Doc:  "connect+auth+bind storm; sessions stay online idle (server memory per session with --server-pid)",
		New:  func(*Run) Behaviour { return Nop{} },
	})
}
