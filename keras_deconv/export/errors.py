"""The error every export function raises for a model it cannot export as asked."""


class ExportError(RuntimeError):
    """A model cannot be exported as asked (e.g. it would need Select-TF ops).

    A failed ``verify`` carries its checks in ``verification`` (else ``None``).
    """

    def __init__(self, message, verification=None):
        super().__init__(message)
        self.verification = verification
