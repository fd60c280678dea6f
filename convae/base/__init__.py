"""What every layer shares and nothing else: convae's errors, files written all or
nothing, small tensor helpers and the version. Imports no other part of convae."""
