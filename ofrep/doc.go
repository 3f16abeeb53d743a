// Package ofrep serves the OpenFeature Remote Evaluation Protocol (OFREP v0.3.0) for the
// flags in force: any OpenFeature OFREP provider (Go, JavaScript web and server, Java, …)
// evaluates slipway's flags through it.
//
// Endpoints, all under /ofrep/v1/:
//
//	POST /ofrep/v1/evaluate/flags/{key}  one flag for one context (server-side providers)
//	POST /ofrep/v1/evaluate/flags        every flag for one context (client-side providers),
//	                                     with a strong ETag and 304 on If-None-Match
//	GET  /ofrep/v1/events                server-sent events: refetchEvaluation when flags change
//
// The bulk ETag is a hash of the flag-set revision and the canonical JSON of the request's
// context, so a client whose context changed never gets a 304 for its old ETag. Flags whose
// targeting reads $flagd.timestamp change over time without a new revision; clients see that
// on the next revision or context change, as with any cached bulk evaluation.
//
// Whoever manages flags swaps a new Set into Config.Flags and calls Server.Notify, which
// tells every event stream to refetch. The server starts no goroutines: each event stream
// runs in its request's goroutine and ends with the request's context or CloseStreams.
//
// Start reading at Server.ServeHTTP (server.go) for the request pipeline, then eval.go for
// the two evaluation endpoints and the ETag, events.go for the event stream, and decode.go
// and encode.go for the allocation-light JSON handling of the hot path.
package ofrep
