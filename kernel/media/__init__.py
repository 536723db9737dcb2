"""Media helpers in the kernel, for the kernel and every plugin alike: what counts as
a photo or a video (``mediatypes``), serving a file over HTTP with ranges and ETags
(``serving``), finding and running ffmpeg and probing clips (``ffmpeg``), sample media
(``samples``), the demo library (``demo``) and capture times as text (``dates``). They
hold no state and know no plugin, so no plugin needs another plugin for them."""
