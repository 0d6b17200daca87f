SELECT 1  -- no header: a workspace file
