"""JSON request bodies for every API: DRF's parser, refusing what no
database column can hold, so bad text is a 400 that names its field instead
of an error from the database."""
from rest_framework import parsers
from rest_framework.exceptions import ParseError

NUL = "\x00"


def nul_field(value, path=""):
    """The path (`server.metadata.key`, `tags[2]`) of the first string, key or
    value, holding a NUL character; None when there is none."""
    if isinstance(value, str):
        return path or "body" if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if NUL in str(key):
                return inner.replace(NUL, "\\x00")
            found = nul_field(item, inner)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_field(item, f"{path}[{index}]")
            if found:
                return found
    return None


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # nested deeper than the decoder goes
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        field = nul_field(data)
        if field:
            raise ParseError(f"Invalid input for field '{field}': text must not contain NUL (\\u0000) characters.")
        return data
