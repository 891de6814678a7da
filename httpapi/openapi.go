package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPI is the OpenAPI 3 document of every route; a test keeps it in
// step with the router.
//
//go:embed openapi.json
var openAPI []byte

// GET /v1/openapi.json
func serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", openAPI)
}
