"""Media generation providers: the offline one (default) and Google's models via google-genai."""
