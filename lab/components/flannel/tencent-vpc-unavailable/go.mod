// A stand-in for github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc, which the Go module
// proxy refuses to serve (403 "This module version is not available" for v1.3.188, which flannel v0.28.10
// requires, and for v1.3.212; 404 for its version list).
// flanneld's main package imports its tencent-vpc backend unconditionally, so without some module
// at this path flanneld cannot be built at all. The lab only runs the vxlan backend: this module
// declares just the names that backend compiles against, and every call returns an error that says
// the tencent-vpc backend is not available in this build. Written for cniswap, not copied.
module github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc

go 1.26.0
