"""The dashboard's pages, a module per group of panels. Each reads and acts
through the REST API (`request.api`, see dashboard.client) with the
session's token."""
