// A stand-in for sigs.k8s.io/mcs-api/controllers: the Go module proxy lists no version of it and
// refuses v0.5.2 (403), which cilium v1.20.2 requires. Cilium takes a single constant from it (the
// annotation naming a ServiceImport's derived Service); this module declares that constant with
// upstream's value and nothing else. Written for cniswap, not copied.
module sigs.k8s.io/mcs-api/controllers

go 1.26.0
