"""Publishing a checked image under its content key, and pulling the prebuilt image of a checkout."""
