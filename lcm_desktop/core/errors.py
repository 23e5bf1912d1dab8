"""The error tree of LCM Desktop.

Every error carries one actionable sentence for the user (``user_message``): what is wrong,
naming the value, and how to fix it.  Errors from torch, huggingface_hub and coremltools are
mapped to these at the boundary (``raise ModelCorruptError(...) from exc``), so the CLI can
print one line and the GUI can show one sentence with the details folded away.
"""

from __future__ import annotations


class LcmWarning(UserWarning):
    """Warnings raised by our own code (turned into errors in the test suite)."""


class LcmError(Exception):
    """Base class: ``str(err)`` is the one-line user message."""

    def __init__(self, message: str):
        super().__init__(message)
        self.user_message = message


class InvalidRequestError(LcmError, ValueError):
    """A generation parameter is out of range or of the wrong kind."""

    def __init__(self, field: str, value: object, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"`{field}` must be {allowed}, got {value!r}.")


class PromptTooLongError(InvalidRequestError):
    """A prompt needs more 75-token chunks than a Core ML model was converted for."""

    def __init__(self, field: str, tokens: int, chunks: int, max_chunks: int):
        self.field, self.value, self.tokens, self.chunks, self.max_chunks = field, tokens, tokens, chunks, max_chunks
        self.allowed = f"at most {max_chunks} chunk{'s' if max_chunks != 1 else ''} of 75 tokens"
        LcmError.__init__(
            self,
            f"The {field} is {tokens} tokens ({chunks} chunks of 75); this Core ML model takes at most "
            f"{75 * max_chunks} tokens ({max_chunks} chunk{'s' if max_chunks != 1 else ''}): shorten it, or convert "
            f"the model again with --max-prompt-chunks {chunks}.",
        )


class ModelNotFoundError(LcmError):
    """A model path or id does not name anything installed."""


class ModelFormatError(LcmError):
    """A folder exists but is not a model this app can load."""


class ModelIncompleteError(ModelFormatError):
    """A model folder lacks a file it lists (an interrupted copy or download)."""


class UnsafeModelError(ModelFormatError):
    """Pickle-based weights (.bin/.ckpt/.pt/.pth) that we refuse to load."""


class ModelCorruptError(LcmError):
    """Weights that cannot be read: truncated, corrupt or mismatched."""


class BackendUnavailableError(LcmError):
    """A requested device or runtime does not exist on this machine."""


class Cancelled(LcmError):
    """The user stopped something; not a failure (the CLI exits 130)."""


class GenerationCancelled(Cancelled):
    """The user cancelled a generation; nothing was written."""

    def __init__(self, message: str = "Generation cancelled."):
        super().__init__(message)


class DownloadError(LcmError):
    """A model could not be downloaded or verified."""


class ConversionError(LcmError):
    """A model could not be converted to Core ML."""


class ParityError(ConversionError):
    """A converted component disagrees with its PyTorch original."""


class OutputError(LcmError):
    """An image or file could not be written."""


class TrainingError(LcmError):
    """A style could not be trained: bad data, a name in use, a checkpoint that does not fit."""


class TrainingCancelled(Cancelled):
    """The user stopped a training run at ``step`` of ``total``; its checkpoint is kept (the message says how to
    resume)."""

    def __init__(self, message: str, step: int = 0, total: int = 0):
        super().__init__(message)
        self.step = step
        self.total = total


class NonFiniteError(LcmError):
    """Numbers became NaN or infinite (a style's weights, a generation's latents or image): never a black image."""
