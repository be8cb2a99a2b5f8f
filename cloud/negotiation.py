"""How API views pick a renderer and a parser."""
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation


class JsonAnswers(DefaultContentNegotiation):
    """Every OpenStack API answers JSON whatever the Accept header says
    (Keystone, Neutron and Glance ignore it; openstacksdk sends an empty one
    on some calls), so the view's first renderer answers without parsing
    Accept. The request body's parser is still chosen by its Content-Type."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type



class JsonOnly(BaseContentNegotiation):
    """JSON in and out whatever the headers say, as Nova and Cinder take it
    (openstacksdk sends an empty Accept on server and flavor actions)."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
