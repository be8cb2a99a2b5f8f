"""S3's `aws-chunked` upload bodies (Content-Encoding: aws-chunked), as
clients that sign while they stream send them:

    <hex size>;chunk-signature=<sig>\\r\\n<size bytes>\\r\\n ... 0;chunk-signature=<sig>\\r\\n
    [<trailer name>:<value>\\r\\n ... [x-amz-trailer-signature:<sig>\\r\\n]]\\r\\n

x-amz-content-sha256 says which form: STREAMING-AWS4-HMAC-SHA256-PAYLOAD
(every chunk signed, each signature chained to the one before, starting
from the request's), the same with -TRAILER (then the trailer is signed
too), or STREAMING-UNSIGNED-PAYLOAD-TRAILER (no chunk signatures; the
trailer carries a checksum). The payload is passed on as it arrives, so a
chunk of any size takes bounded memory; a bad signature fails the stream at
that chunk's end, before the store keeps anything."""
import hashlib
import hmac
from dataclasses import dataclass, field

from objects.api.s3errors import S3Error

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
FORMS = (SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_LINE = 4096  # a chunk header or a trailer line
MAX_TRAILER_LINES = 16


@dataclass
class Streaming:
    """What checking a request's chunks needs, from its Authorization."""
    form: str
    signing_key: bytes
    amz_date: str
    scope: str
    seed_signature: str
    trailers: dict = field(default_factory=dict)  # lower-case name -> value, once the body is read

    @property
    def signed(self):
        return self.form != UNSIGNED_TRAILER

    @property
    def has_trailer(self):
        return self.form != SIGNED

    def signature(self, kind, previous, digest):
        to_sign = "\n".join([kind, self.amz_date, self.scope, previous, *digest])
        return hmac.new(self.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()


def malformed(message="The chunked (aws-chunked) body is not well-formed."):
    return S3Error("IncompleteBody", 400, message)


def bad_signature():
    return S3Error("SignatureDoesNotMatch", 403, "The request signature we calculated does not match the "
                                                 "signature you provided: a chunk of the body is not the one "
                                                 "signed.")


class _Input:
    """The raw body's pieces read as lines and runs of bytes."""

    def __init__(self, pieces):
        self.pieces, self.buffer = iter(pieces), bytearray()

    def _fill(self):
        piece = next(self.pieces, b"")
        self.buffer += piece
        return bool(piece)

    def line(self):
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                text = bytes(self.buffer[:end])
                del self.buffer[:end + 2]
                return text
            if len(self.buffer) > MAX_LINE or not self._fill():
                raise malformed()

    def run(self, count):
        """`count` bytes, in the pieces they came in."""
        while count:
            if not self.buffer and not self._fill():
                raise malformed("You did not provide the number of bytes the chunk sizes promised.")
            taken = bytes(self.buffer[:count])
            del self.buffer[:len(taken)]
            count -= len(taken)
            yield taken

    def at_end(self):
        return not self.buffer and not self._fill()


def _chunk_header(line, streaming):
    size_text, _, extension = line.decode("latin-1").partition(";")
    try:
        size = int(size_text.strip(), 16)
    except ValueError:
        raise malformed()
    if size < 0:
        raise malformed()
    name, _, signature = extension.partition("=")
    if streaming.signed and name.strip() != "chunk-signature":
        raise S3Error("SignatureDoesNotMatch", 403, "A chunk of the body has no chunk-signature.")
    return size, signature.strip()


def decoded(pieces, streaming, decoded_length):
    """The payload of the aws-chunked body in `pieces`; S3Error when a
    chunk's signature, the framing or the total length is wrong."""
    source = _Input(pieces)
    previous = streaming.seed_signature
    total = 0
    while True:
        size, signature = _chunk_header(source.line(), streaming)
        total += size
        if decoded_length is not None and total > decoded_length:
            raise malformed("The chunks hold more bytes than x-amz-decoded-content-length.")
        digest = hashlib.sha256()
        for piece in source.run(size):
            digest.update(piece)
            yield piece
        if streaming.signed:
            expected = streaming.signature("AWS4-HMAC-SHA256-PAYLOAD", previous, [EMPTY_SHA256, digest.hexdigest()])
            if not hmac.compare_digest(expected, signature):
                raise bad_signature()
            previous = signature
        if size == 0:
            break
        if source.line() != b"":
            raise malformed()
    if streaming.has_trailer:
        _read_trailer(source, streaming, previous)
    elif source.line() != b"":  # the blank line that ends the body
        raise malformed()
    if decoded_length is not None and total != decoded_length:
        raise malformed("You did not provide the number of bytes specified by x-amz-decoded-content-length.")
    if not source.at_end():
        raise malformed("The body goes on past its last chunk.")


def _read_trailer(source, streaming, previous):
    lines = []
    while True:
        line = source.line()
        if not line:
            break
        if len(lines) == MAX_TRAILER_LINES:
            raise malformed("The body's trailer has too many lines.")
        lines.append(line.decode("latin-1"))
    signature = None
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise S3Error("MalformedTrailerError", 400, "The request contained trailing data that was not "
                                                        "well-formed.")
        name = name.strip().lower()
        if name == "x-amz-trailer-signature":
            signature = value.strip()
        else:
            streaming.trailers[name] = value.strip()
    if streaming.signed:
        canonical = "".join(f"{name}:{value}\n" for name, value in streaming.trailers.items())
        expected = streaming.signature("AWS4-HMAC-SHA256-TRAILER", previous,
                                       [hashlib.sha256(canonical.encode()).hexdigest()])
        if signature is None or not hmac.compare_digest(expected, signature):
            raise bad_signature()
