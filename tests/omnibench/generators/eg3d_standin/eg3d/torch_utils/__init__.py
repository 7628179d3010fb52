"""Stand-in of an EG3D-style checkout's ``torch_utils`` package (tests only)."""
