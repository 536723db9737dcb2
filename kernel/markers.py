"""The pluggy markers, exported from one place so every plugin spells them the same."""

import pluggy

PROJECT_NAME = "imageapi"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
