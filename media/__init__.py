"""Media helpers beside the kernel: finding and running ffmpeg, probing clips, and the
demo library. Plugins import them (``media.ffmpeg``); they are not kernel duties, and
no plugin needs another plugin for them."""
