"""S3's errors: a code, a status and an XML body naming them."""
from xml.sax.saxutils import escape

from django.http import HttpResponse


class S3Error(Exception):
    def __init__(self, code, status, message, **details):
        super().__init__(message)
        self.code, self.status, self.message, self.details = code, status, message, details

    def response(self, request):
        fields = {"Code": self.code, "Message": self.message, **self.details,
                  "Resource": request.path, "RequestId": getattr(request, "request_id", "")}
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
                + "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in fields.items())
                + "</Error>").encode()
        response = HttpResponse(b"" if request.method == "HEAD" else body, status=self.status,
                                content_type="application/xml")
        response["Content-Length"] = str(len(body))
        return response


def no_such_bucket(name):
    return S3Error("NoSuchBucket", 404, "The specified bucket does not exist", BucketName=name)


def no_such_key(name):
    return S3Error("NoSuchKey", 404, "The specified key does not exist.", Key=name)


def no_such_upload(upload_id):
    return S3Error("NoSuchUpload", 404, "The specified upload does not exist. The upload ID may be invalid, or the "
                                        "upload may have been aborted or completed.", UploadId=upload_id)


def malformed_xml():
    return S3Error("MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our "
                                        "published schema")
