// Wrapper module for Flannel's CNI plugin. Its current home, github.com/flannel-io/cni-plugin, is
// not served by the Go module proxy (403 for its version list and for v1.7.1-flannel1,
// v1.8.0-flannel1, v1.9.0-flannel1), so it is built from github.com/containernetworking/plugins
// v0.9.1, the newest served release that still has plugins/meta/flannel (v1.0.1 no longer does).
// Built by crates/lab/src/components.rs.
module cniswap.lab/components/cni-plugins

go 1.26.0

tool github.com/containernetworking/plugins/plugins/meta/flannel

require (
	github.com/Microsoft/go-winio v0.4.11 // indirect
	github.com/Microsoft/hcsshim v0.8.6 // indirect
	github.com/buger/jsonparser v0.0.0-20180808090653-f4dd9f5a6b44 // indirect
	github.com/containernetworking/cni v0.8.1 // indirect
	github.com/containernetworking/plugins v0.9.1 // indirect
	github.com/sirupsen/logrus v1.0.6 // indirect
	golang.org/x/crypto v0.0.0-20200622213623-75b288015ac9 // indirect
	golang.org/x/sys v0.0.0-20201117170446-d9b008d0a637 // indirect
)
