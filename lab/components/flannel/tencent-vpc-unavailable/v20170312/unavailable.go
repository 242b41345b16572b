// Package v20170312 declares the part of Tencent Cloud's VPC API that flanneld's tencent-vpc
// backend compiles against. Nothing here talks to Tencent Cloud: see ../go.mod.
package v20170312

import "errors"

// ErrUnavailable is returned by every call: the real SDK is not served by the module proxy.
var ErrUnavailable = errors.New("the tencent-vpc backend is not available in the cniswap lab build of flanneld (its SDK module cannot be downloaded); use the vxlan backend")

// Client stands in for the SDK's VPC client.
type Client struct{}

// NewClientWithSecretId returns a client whose calls all fail with ErrUnavailable.
func NewClientWithSecretId(secretID, secretKey, region string) (*Client, error) {
	return &Client{}, ErrUnavailable
}

// Filter selects route tables.
type Filter struct {
	Name   *string
	Values []*string
}

// Route is one VPC route.
type Route struct {
	RouteId              *uint64
	DestinationCidrBlock *string
	GatewayType          *string
	GatewayId            *string
	RouteType            *string
	Enabled              *bool
}

// RouteTable is one VPC route table.
type RouteTable struct {
	RouteTableId *string
	RouteSet     []*Route
}

// DescribeRouteTablesRequest asks for route tables.
type DescribeRouteTablesRequest struct{ Filters []*Filter }

// DescribeRouteTablesResponse carries route tables.
type DescribeRouteTablesResponse struct {
	Response *struct{ RouteTableSet []*RouteTable }
}

// DeleteRoutesRequest asks to delete routes.
type DeleteRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

// DeleteRoutesResponse answers DeleteRoutesRequest.
type DeleteRoutesResponse struct{}

// CreateRoutesRequest asks to create routes.
type CreateRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

// CreateRoutesResponse answers CreateRoutesRequest.
type CreateRoutesResponse struct{}

func NewDescribeRouteTablesRequest() *DescribeRouteTablesRequest {
	return &DescribeRouteTablesRequest{}
}
func NewDeleteRoutesRequest() *DeleteRoutesRequest { return &DeleteRoutesRequest{} }
func NewCreateRoutesRequest() *CreateRoutesRequest { return &CreateRoutesRequest{} }

// DescribeRouteTables always fails with ErrUnavailable.
func (c *Client) DescribeRouteTables(*DescribeRouteTablesRequest) (*DescribeRouteTablesResponse, error) {
	return nil, ErrUnavailable
}

// DeleteRoutes always fails with ErrUnavailable.
func (c *Client) DeleteRoutes(*DeleteRoutesRequest) (*DeleteRoutesResponse, error) {
	return nil, ErrUnavailable
}

// CreateRoutes always fails with ErrUnavailable.
func (c *Client) CreateRoutes(*CreateRoutesRequest) (*CreateRoutesResponse, error) {
	return nil, ErrUnavailable
}
