"""Starting, stopping and inspecting the stack (local processes)."""
